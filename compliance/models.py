"""Compliance: the framework library (data), our controls, and the append-only results that evidence them.

- LibraryVersion → Framework → Requirement: one row set per loaded library version (YAML under
  compliance/library/<version>/). Loading a new version adds rows; nothing earlier is changed or
  deleted, so every old result still points at the requirements it evidenced then.
- Control: *our* control (a check function or a manual attestation), stable across versions, with
  its owner, applicability + justification (the Statement of Applicability) and frequency.
  Mapping: requirement ↔ control, many-to-many, per library version.
- Evaluation (one job of kind `compliance.evaluate`) → Result per control: pass / fail / error /
  not applicable, evidence JSON and its SHA-256, duration. Results are INSERT-only for the app role
  (migration 0004 revokes UPDATE/DELETE/TRUNCATE) and mirrored as control-plane events.
- FrameworkSnapshot: readiness per framework after each evaluation (the trend chart reads these).
- ChainCheckpoint: where the incremental hash-chain check last verified each event log.
- AccessReview / AccessDecision, Incident: the small registers checks 3 and 18 read.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class LibraryVersion(models.Model):
    version = models.CharField(max_length=40, unique=True)
    digest = models.CharField(max_length=64, help_text="SHA-256 over the version's YAML files, in name order.")
    loaded_at = models.DateTimeField()
    loaded_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["-loaded_at", "-id"]

    def __str__(self) -> str:
        return f"library {self.version}"


class Framework(models.Model):
    library = models.ForeignKey(LibraryVersion, on_delete=models.PROTECT, related_name="frameworks")
    key = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    edition = models.CharField(max_length=100, blank=True, help_text="The standard's own version, e.g. 2022.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "key"]
        constraints = [models.UniqueConstraint(fields=["library", "key"], name="framework_unique_per_library")]

    def __str__(self) -> str:
        return self.name


class Requirement(models.Model):
    class Mode(models.TextChoices):
        AUTOMATED = "automated", "Automated"
        MANUAL = "manual", "Manual"
        NOT_APPLICABLE = "na", "Not applicable"

    framework = models.ForeignKey(Framework, on_delete=models.PROTECT, related_name="requirements")
    ref = models.CharField(max_length=40, help_text="The standard's own identifier, e.g. CC6.1 or A.8.5.")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="In our own words.")
    mode = models.CharField(max_length=10, choices=Mode.choices)
    na_reason = models.CharField(max_length=500, blank=True)
    position = models.PositiveIntegerField(default=0)
    controls: models.ManyToManyField = models.ManyToManyField("Control", through="Mapping", related_name="requirements")

    class Meta:
        ordering = ["framework_id", "position"]
        constraints = [models.UniqueConstraint(fields=["framework", "ref"], name="requirement_unique_ref")]

    def __str__(self) -> str:
        return f"{self.ref} {self.title}"


class Control(models.Model):
    class Frequency(models.TextChoices):
        HOURLY = "hourly", "Hourly"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"

    key = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    check_name = models.CharField(max_length=60, blank=True, help_text="Registered check; empty: a manual control.")
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.DAILY)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    applicable = models.BooleanField(default=True)
    justification = models.TextField(
        blank=True, help_text="Why it applies (or does not): the Statement of Applicability."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name

    @property
    def automated(self) -> bool:
        return bool(self.check_name)


class Mapping(models.Model):
    requirement = models.ForeignKey(Requirement, on_delete=models.PROTECT, related_name="mappings")
    control = models.ForeignKey(Control, on_delete=models.PROTECT, related_name="mappings")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["requirement", "control"], name="mapping_unique")]

    def __str__(self) -> str:
        return f"requirement {self.requirement_id} ↔ control {self.control_id}"


class Evaluation(models.Model):
    job = models.OneToOneField("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    library = models.ForeignKey(LibraryVersion, on_delete=models.PROTECT, related_name="+")
    requested_by = models.CharField(max_length=150)
    controls = models.JSONField(default=list, help_text="Control keys evaluated; all applicable ones if empty.")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["-started_at", "-id"], name="evaluation_recent")]

    def __str__(self) -> str:
        return f"evaluation {self.pk}"


class Result(models.Model):
    class Status(models.TextChoices):
        PASS = "pass", "Pass"
        FAIL = "fail", "Fail"
        ERROR = "error", "Error"
        NOT_APPLICABLE = "na", "Not applicable"

    evaluation = models.ForeignKey(Evaluation, on_delete=models.PROTECT, related_name="results")
    control = models.ForeignKey(Control, on_delete=models.PROTECT, related_name="results")
    check_name = models.CharField(max_length=60)
    status = models.CharField(max_length=5, choices=Status.choices)
    summary = models.CharField(max_length=500)
    evidence = models.JSONField(default=dict)
    evidence_sha256 = models.CharField(max_length=64)
    duration_ms = models.PositiveIntegerField()
    evaluated_at = models.DateTimeField()

    class Meta:
        ordering = ["-evaluated_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["evaluation", "control"], name="result_one_per_evaluation")]
        indexes = [models.Index(fields=["control", "-evaluated_at"], name="result_control_history")]

    def __str__(self) -> str:
        return f"{self.check_name or self.control_id}: {self.status}"


class FrameworkSnapshot(models.Model):
    evaluation = models.ForeignKey(Evaluation, on_delete=models.PROTECT, related_name="snapshots")
    framework = models.ForeignKey(Framework, on_delete=models.PROTECT, related_name="snapshots")
    taken_at = models.DateTimeField()
    applicable = models.PositiveIntegerField()
    satisfied = models.PositiveIntegerField()
    counts = models.JSONField(default=dict, help_text="Requirements per state: pass, fail, manual, na.")

    class Meta:
        ordering = ["-taken_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["evaluation", "framework"], name="snapshot_one_per_evaluation")]
        indexes = [models.Index(fields=["framework", "-taken_at"], name="snapshot_framework_time")]

    def __str__(self) -> str:
        return f"{self.framework_id} at {self.taken_at}: {self.satisfied}/{self.applicable}"

    @property
    def readiness(self) -> float:
        return round(100.0 * self.satisfied / self.applicable, 1) if self.applicable else 100.0


class ChainCheckpoint(models.Model):
    log = models.CharField(max_length=80, unique=True, help_text='"control" or "tenant:<uuid>".')
    # The feed position (docs/events.md) up to which every event verified: (tx_id, event_id).
    tx_id = models.BigIntegerField(default=0)
    event_id = models.BigIntegerField(default=0)
    verified_at = models.DateTimeField()
    # The last time the whole log was re-verified from its first event (COMPLIANCE_CHAIN_FULL_HOURS).
    full_verified_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.log} verified to event {self.event_id}"


class AccessReview(models.Model):
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    started_by_label = models.CharField(max_length=150)
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"access review {self.pk}"


class AccessDecision(models.Model):
    class Decision(models.TextChoices):
        PENDING = "pending", "Pending"
        CONFIRMED = "confirmed", "Confirmed"
        REVOKED = "revoked", "Revoked"

    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="decisions")
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    operator_label = models.CharField(max_length=150)
    role = models.CharField(max_length=20)
    decision = models.CharField(max_length=10, choices=Decision.choices, default=Decision.PENDING)
    decided_by_label = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["operator_label"]
        constraints = [models.UniqueConstraint(fields=["review", "operator"], name="access_decision_one_per_operator")]

    def __str__(self) -> str:
        return f"{self.operator_label}: {self.decision}"


class Incident(models.Model):
    title = models.CharField(max_length=200)
    detected_at = models.DateTimeField()
    contained_at = models.DateTimeField(null=True, blank=True)
    notifiable = models.BooleanField(default=True, help_text="A personal-data breach the authority must hear of.")
    notified_at = models.DateTimeField(null=True, blank=True)
    created_by_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(contained_at__isnull=True) | Q(contained_at__gte=models.F("detected_at")),
                name="incident_contained_after_detected",
            )
        ]

    def __str__(self) -> str:
        return self.title


class ExportFile(models.Model):
    """A report built by an export job (kind `compliance.export`), kept in the database so any web
    process can hand it out, whichever worker built it."""

    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    data = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Attestation(models.Model):
    """A person vouches for a manual control (a policy approved, a risk review held) until a date: the
    only way a manual control counts as satisfied. INSERT-only for the app role (migration 0007)."""

    control = models.ForeignKey(Control, on_delete=models.PROTECT, related_name="attestations")
    statement = models.TextField()
    evidence_url = models.URLField(max_length=500, blank=True)
    attested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    attested_by_label = models.CharField(max_length=150)
    attested_at = models.DateTimeField()
    valid_until = models.DateTimeField()

    class Meta:
        ordering = ["-attested_at", "-id"]
        indexes = [models.Index(fields=["control", "-attested_at"], name="attestation_control_time")]

    def __str__(self) -> str:
        return f"attestation of {self.control_id} until {self.valid_until:%Y-%m-%d}"
