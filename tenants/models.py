"""Control-plane rows that say where each tenant's data lives (see docs/tenancy.md).

- Placement: one place rows live — a pool schema shared by many tenants, a
  tenant's own schema, or a dedicated database (with encrypted credentials).
- Tenant: the customer (uuid, slug, isolation, lifecycle status, plan).
- Domain: host names that resolve to a tenant.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class Placement(models.Model):
    class Kind(models.TextChoices):
        POOL = "pool", "Shared pool schema"
        SCHEMA = "schema", "Own schema"
        DATABASE = "database", "Dedicated database"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Django connection alias: "default" for placements in the control-plane database,
    # a runtime-registered alias for dedicated databases.
    database_alias = models.CharField(max_length=63, default="default")
    schema_name = models.CharField(max_length=63)
    db_name = models.CharField(max_length=63, blank=True, help_text="Dedicated databases only.")
    db_host = models.CharField(max_length=255, blank=True)
    db_port = models.CharField(max_length=10, blank=True)
    # Fernet token of a JSON object {app_user, app_password, owner_user, owner_password}.
    credentials_encrypted = models.TextField(blank=True)
    capacity = models.PositiveIntegerField(default=1, help_text="How many tenants may live here.")
    # Tenants pointing here, kept by a trigger on tenants_tenant (migration 0004_pool_tenant_count), so
    # choosing a pool with room is one indexed query, whatever the number of pools or tenants.
    tenant_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["database_alias", "schema_name"], name="placement_unique_location"),
            models.CheckConstraint(condition=Q(kind__in=["pool", "schema", "database"]), name="placement_kind_valid"),
        ]
        indexes = [
            # Pools with room, in opening order: tenants.provisioning.steps.place_in_pool reads its first row.
            models.Index(
                fields=["id"],
                name="placement_open_pool",
                condition=Q(kind="pool", tenant_count__lt=models.F("capacity")),
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.DATABASE:
            return f"database {self.db_name}"
        return f"{self.get_kind_display().lower()} {self.schema_name}"

    @property
    def is_dedicated(self) -> bool:
        return self.kind == self.Kind.DATABASE

    @property
    def owner_alias(self) -> str:
        return "owner" if self.database_alias == "default" else f"{self.database_alias}__owner"


class Tenant(models.Model):
    class Isolation(models.TextChoices):
        SHARED = "shared", "Shared (pool + RLS)"
        SCHEMA = "schema", "Own schema"
        DEDICATED = "dedicated", "Dedicated database"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROVISIONING = "provisioning", "Provisioning"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        MOVING = "moving", "Moving"
        DELETING = "deleting", "Deleting"
        DELETED = "deleted", "Deleted"
        FAILED = "failed", "Failed"

    class Plan(models.TextChoices):
        FREE = "free", "Free"
        TEAM = "team", "Team"
        BUSINESS = "business", "Business"
        ENTERPRISE = "enterprise", "Enterprise"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    isolation = models.CharField(max_length=10, choices=Isolation.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    plan = models.CharField(max_length=12, choices=Plan.choices, default=Plan.FREE)
    placement = models.ForeignKey(Placement, null=True, blank=True, on_delete=models.PROTECT, related_name="tenants")
    # Contact address of the tenant's first admin; the member itself lives in the data plane.
    owner_email = models.EmailField(blank=True)
    status_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # Plan quotas the usage collector last found used up (e.g. "storage_bytes"): carried into the tenant
    # context, so the workspace refuses growth without reading anything of the control plane.
    quotas_exceeded = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(isolation__in=["shared", "schema", "dedicated"]), name="tenant_isolation_valid"
            ),
        ]
        indexes = [models.Index(fields=["isolation", "status"])]

    def __str__(self) -> str:
        return self.slug

    @property
    def serves_data(self) -> bool:
        return self.status == self.Status.ACTIVE


class Domain(models.Model):
    domain = models.CharField(max_length=253, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="domains")
    is_primary = models.BooleanField(default=False)
    verified = models.BooleanField(default=False)
    # Random value the customer publishes as `_saas-verify.<domain> TXT <token>` (custom domains only).
    verification_token = models.CharField(max_length=64, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_primary", "domain"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(is_primary=True), name="domain_one_primary_per_tenant"
            )
        ]

    def __str__(self) -> str:
        return self.domain

    @property
    def verification_record(self) -> str:
        """The DNS record that proves control of a custom domain."""
        return f"_saas-verify.{self.domain}"


class MigrationState(models.Model):
    """Which migrations one placement has applied, as the control plane last recorded it.

    Written by whatever changes a placement's migrations (provisioning, migration runs) in the
    transaction that records the outcome, and re-read from the placements by the periodic
    verification job (migration_runs), which flags any difference as drift. The Migrations
    screen reads these rows, so it never opens a connection to a tenant database
    (docs/migration_runs.md).
    """

    placement = models.OneToOneField(Placement, on_delete=models.CASCADE, related_name="migration_state")
    # Copied from the placement so the screen filters one table: kind, schema or database name, server.
    kind = models.CharField(max_length=10, db_index=True)
    label = models.CharField(max_length=200)
    server = models.CharField(max_length=300)
    applied = models.JSONField(default=list, help_text='Applied migrations, "app.name", sorted.')
    # md5 of the sorted list: placements with the same history share it, so the screen works out
    # "pending" once per distinct history instead of once per placement.
    digest = models.CharField(max_length=32, db_index=True)
    missing = models.BooleanField(default=False, help_text="No django_migrations table was found.")
    recorded_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)
    drift = models.CharField(max_length=500, blank=True, help_text="What the last verification found changed.")
    error = models.CharField(max_length=500, blank=True, help_text="Why the last verification could not read it.")

    class Meta:
        ordering = ["placement_id"]

    def __str__(self) -> str:
        return f"migrations of {self.label}"


class TenantMove(models.Model):
    """One move of a tenant between placements (tenants/moves/): its saga, progress and outcome.

    The move saga writes it step by step; the tenant page and the API read it for the live
    progress (rows copied, freeze time). `purge_after` is when the source copy goes.
    """

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        SWITCHED = "switched", "Switched (source kept until the purge)"
        PURGED = "purged", "Done (source purged)"
        COMPENSATED = "compensated", "Rolled back"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="moves")
    saga_id = models.UUIDField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.RUNNING, db_index=True)
    phase = models.CharField(max_length=60, blank=True, help_text="What the saga is doing now.")
    source_placement = models.ForeignKey(Placement, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_label = models.CharField(max_length=200, blank=True)
    source_isolation = models.CharField(max_length=10)
    target_placement = models.ForeignKey(Placement, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    target_label = models.CharField(max_length=200, blank=True)
    target_isolation = models.CharField(max_length=10)
    server = models.CharField(max_length=63, blank=True)
    rows_total = models.BigIntegerField(default=0)
    rows_copied = models.BigIntegerField(default=0)
    delta_rows = models.BigIntegerField(default=0)
    # Per table: {"rows": n, "checksum": md5 of the ordered row digests} as verified in both copies.
    tables = models.JSONField(default=dict, blank=True)
    freeze_started_at = models.DateTimeField(null=True, blank=True)
    switched_at = models.DateTimeField(null=True, blank=True)
    purge_after = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant"], condition=Q(state="running"), name="tenant_one_running_move")
        ]

    def __str__(self) -> str:
        return f"move of {self.tenant_id} to {self.target_isolation}"

    @property
    def progress_done(self) -> int:
        return min(self.rows_copied, self.rows_total)

    @property
    def freeze_seconds(self) -> float | None:
        if self.freeze_started_at is None:
            return None
        from django.utils import timezone  # at call time: only this property needs the clock

        end = self.switched_at or (timezone.now() if self.state == self.State.RUNNING else self.updated_at)
        return max(0.0, (end - self.freeze_started_at).total_seconds())


class TenantDeletion(models.Model):
    """One offboarding of a tenant (tenants/offboarding/): scheduled with a grace period during which
    it can be cancelled, then the `tenant.delete` saga; `destroyed` records what went."""

    class State(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled (restorable)"
        CANCELLED = "cancelled", "Cancelled (tenant restored)"
        RUNNING = "running", "Deleting"
        DONE = "done", "Deleted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="deletions")
    state = models.CharField(max_length=10, choices=State.choices, default=State.SCHEDULED, db_index=True)
    previous_status = models.CharField(max_length=12)
    reason = models.CharField(max_length=300, blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    grace_until = models.DateTimeField()
    saga_id = models.UUIDField(null=True, blank=True)
    # What was destroyed: placement, tables and rows, keys, domains (no personal data).
    destroyed = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(state__in=["scheduled", "running"]), name="tenant_one_open_deletion"
            )
        ]

    def __str__(self) -> str:
        return f"deletion of {self.tenant_id}"


class TenantExport(models.Model):
    """One portable export of a tenant (tenants/exports/): a ZIP file under TENANCY_EXPORTS_DIR made by
    a `tenants.export` job — on demand, on the plan's schedule, as the first step of offboarding, or as
    the restore point taken before an in-place restore. `tables` holds the rows per table."""

    class Reason(models.TextChoices):
        ON_DEMAND = "on_demand", "On demand"
        SCHEDULED = "scheduled", "Scheduled (recovery point)"
        OFFBOARDING = "offboarding", "Final export (offboarding)"
        RESTORE_POINT = "restore_point", "Restore point (before an in-place restore)"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Exporting"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"
        PURGED = "purged", "File removed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="exports")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_isolation = models.CharField(max_length=10, blank=True)
    file_name = models.CharField(max_length=200, blank=True, help_text="Relative to TENANCY_EXPORTS_DIR.")
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, help_text="Of the whole file.")
    rows = models.BigIntegerField(default=0)
    tables = models.JSONField(default=dict, blank=True)
    format_version = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    # The owner's download link of a final export: only the token's hash, valid until the grace ends.
    owner_token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    owner_link_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "state", "-finished_at"], name="tenant_export_newest")]

    def __str__(self) -> str:
        return f"export of {self.tenant_id} ({self.reason})"
