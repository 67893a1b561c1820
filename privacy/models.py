"""Data-subject requests, their download links, erasure proofs and legal holds (control plane).

A request never stores the subject's email in plain text: `email_enc` is Fernet-encrypted with
FIELD_ENCRYPTION_KEY (tenants.crypto) and wiped when the subject is erased, and everything else
names the subject by `subject_ref` (core.personal_data.subject_ref, a keyed hash). So the erasure
saga's plain-text scan of the control plane finds nothing here.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class RequestKind(models.TextChoices):
    ACCESS = "access", "Access and portability (Art. 15, 20)"
    ERASURE = "erasure", "Erasure (Art. 17)"


class RequestStatus(models.TextChoices):
    OPEN = "open", "Open"
    AWAITING = "awaiting", "Awaiting a second Admin"
    RUNNING = "running", "Running"
    READY = "ready", "Ready for download"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused"


OPEN_STATUSES = (RequestStatus.OPEN, RequestStatus.AWAITING, RequestStatus.RUNNING, RequestStatus.FAILED)


class SubjectRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=10, choices=RequestKind.choices)
    # Deleting a tenant deletes its requests (and bundles' rows); erasure proofs stay (SET_NULL below).
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="subject_requests")
    subject_ref = models.CharField(max_length=64, db_index=True)
    email_enc = models.TextField(blank=True, help_text="Fernet token; emptied once the subject is erased.")
    status = models.CharField(max_length=10, choices=RequestStatus.choices, default=RequestStatus.OPEN)
    source = models.CharField(max_length=20, default="operator", help_text="operator, workspace or command.")
    opened_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    opened_by_label = models.CharField(max_length=254, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    saga = models.ForeignKey("sagas.Saga", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    bundle_path = models.CharField(max_length=500, blank=True)
    bundle_sha256 = models.CharField(max_length=64, blank=True)
    bundle_size = models.BigIntegerField(default=0)
    bundle_purged_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)
    # Erasure only: the names to scan for (Fernet, wiped with the proof), the member rows as they were
    # (encrypted with the *subject's* key, so they die with it), and the point of no return.
    names_enc = models.TextField(blank=True)
    stash = models.JSONField(default=dict, blank=True)
    keys_destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "subject_ref"], name="privacy_req_subject"),
            models.Index(fields=["status", "due_at"], name="privacy_req_sla"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subject_ref[:10]}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def overdue(self) -> bool:
        return self.is_open and timezone.now() > self.due_at

    @property
    def days_left(self) -> int:
        return (self.due_at - timezone.now()).days


class DownloadLink(models.Model):
    """A single-use, expiring link to an access request's bundle; only the token's hash is kept."""

    request = models.ForeignKey(SubjectRequest, on_delete=models.CASCADE, related_name="links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_by_label = models.CharField(max_length=254, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"link {self.pk} of {self.request_id}"


class ErasureProof(models.Model):
    """What an erasure did, with no personal data: the subject only as a hash of its pseudonymous id."""

    # Evidence outlives the request and the tenant.
    request = models.OneToOneField(
        SubjectRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="proof"
    )
    # Not a foreign key (the proof outlives the tenant) and not named tenant_id: the catalog audit
    # (tenants/tests/test_catalog.py) treats a bare NOT NULL tenant_id as data-plane data needing RLS.
    tenant_uuid = models.UUIDField()
    subject_hash = models.CharField(max_length=64)
    keys_destroyed = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict)
    verification = models.JSONField(default=dict)
    completed_at = models.DateTimeField(default=timezone.now)
    proof_sha256 = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"proof {self.proof_sha256[:12]}"


class LegalHold(models.Model):
    """A hold stops retention purges and erasure for a whole tenant, or for one subject in it."""

    # PROTECT on purpose: a tenant under a legal hold (even a released one's record) cannot be deleted.
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="legal_holds")
    subject_ref = models.CharField(max_length=64, blank=True, help_text="Empty: the whole tenant.")
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    created_by_label = models.CharField(max_length=254)
    until = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by_label = models.CharField(max_length=254, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "subject_ref"], name="privacy_hold_subject")]

    def __str__(self) -> str:
        return f"hold {self.pk}: {self.reason[:40]}"

    @property
    def active(self) -> bool:
        now = timezone.now()
        return self.released_at is None and (self.until is None or self.until > now)


class RetentionCategory(models.TextChoices):
    AUDIT_ENTRIES = "audit_entries", "Audit entries"
    CONTROL_EVENTS = "control_events", "Control-plane events of deleted tenants"
    SESSIONS = "sessions", "Expired sessions (members and operators)"
    EXPIRED_SIGNUPS = "expired_signups", "Expired signups"
    DSAR_BUNDLES = "dsar_bundles", "Access-request bundles"
    TENANT_EXPORTS = "tenant_exports", "Tenant exports"


class RetentionPolicy(models.Model):
    """How long one category of data is kept; beat purges what is older, as a job (privacy.retention)."""

    category = models.CharField(max_length=20, choices=RetentionCategory.choices, unique=True)
    days = models.PositiveIntegerField()
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by_label = models.CharField(max_length=254, blank=True)

    class Meta:
        ordering = ["category"]

    def __str__(self) -> str:
        return f"{self.category}: {self.days} days"


class RetentionRun(models.Model):
    """Compliance evidence: what one purge removed, what holds kept, when."""

    category = models.CharField(max_length=20, choices=RetentionCategory.choices)
    job = models.OneToOneField("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cutoff = models.DateTimeField()
    finished_at = models.DateTimeField(default=timezone.now)
    purged = models.PositiveIntegerField(default=0)
    held = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-finished_at"]

    def __str__(self) -> str:
        return f"{self.category} purged {self.purged}"
