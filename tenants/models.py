"""Control-plane rows that say where each tenant's data lives (see docs/tenancy.md).

- Placement: one place rows live — a pool schema shared by many tenants, a
  tenant's own schema, or a dedicated database (with encrypted credentials).
- Tenant: the customer (uuid, slug, isolation, lifecycle status, plan).
- Domain: host names that resolve to a tenant.
- Server (and ServerStatus), MigrationState, and the records of a tenant's lifecycle work: TenantMove, TenantDeletion,
  TenantExport, TenantImport.

Why one module: Django finds an app's models in models.py, and these rows reference one another
(placement ↔ server ↔ tenant); the lifecycle records are short and read with the tenant.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class Server(models.Model):
    """One PostgreSQL server placements may live on (docs/tenancy.md, "Several PostgreSQL servers").

    `default` is the control plane's own server (DATABASE_URL): its pools and schemas live in the
    control-plane database. Every other server holds its pools and own schemas in one "tenant data"
    database (`data_database`) and its dedicated databases beside it. The project's owner, app and
    data roles exist on every server with the same names and passwords (created at registration
    through the server's admin login, kept encrypted like placement credentials).
    """

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        DRAINING = "draining", "Draining (no new placements)"

    name = models.CharField(max_length=40, unique=True)
    host = models.CharField(max_length=255, blank=True)
    port = models.CharField(max_length=10, blank=True)
    # Fernet token of {"user", "password"}: a login that may create roles and databases. Empty for
    # `default`, whose admin is DATABASE_URL's bootstrap user.
    admin_credentials_encrypted = models.TextField(blank=True)
    data_database = models.CharField(max_length=63, blank=True, help_text="Pools and schemas (not on default).")
    capacity = models.PositiveIntegerField(default=1000, help_text="How many placements may live here.")
    takes_shared = models.BooleanField(default=True)
    takes_schema = models.BooleanField(default=True)
    takes_dedicated = models.BooleanField(default=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    is_default = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="server_one_default"),
            models.CheckConstraint(condition=Q(state__in=["active", "draining"]), name="server_state_valid"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def address(self) -> str:
        return f"{self.host or 'localhost'}:{self.port or 5432}"

    @property
    def levels(self) -> list[str]:
        taken = [("shared", self.takes_shared), ("schema", self.takes_schema), ("dedicated", self.takes_dedicated)]
        return [level for level, takes in taken if takes]

    def takes(self, isolation: str) -> bool:
        return isolation in self.levels


class ServerStatus(models.Model):
    """What the periodic health job last found on one server (the overview reads it, never probes)."""

    server = models.OneToOneField(Server, on_delete=models.CASCADE, primary_key=True, related_name="status")
    reachable = models.BooleanField(default=False)
    latency_ms = models.FloatField(null=True, blank=True)
    backends = models.PositiveIntegerField(null=True, blank=True)
    max_connections = models.PositiveIntegerField(null=True, blank=True)
    placements = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    checked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"status of {self.server_id}"


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
    # The server it lives on; null is the default server (rows made before the registry existed).
    server = models.ForeignKey(Server, null=True, blank=True, on_delete=models.PROTECT, related_name="placements")
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
    # Set on a renamed tenant's old primary host: until then it redirects to the primary domain
    # (tenants.middleware), after it it is free again (docs/lifecycle.md, "Rename").
    redirect_until = models.DateTimeField(null=True, blank=True)
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


class TenantImport(models.Model):
    """One tenant adopted from a django-tenants deployment (tenants/adoption.py,
    `manage.py import_django_tenants`): where it came from and what was carried over.

    (source_database, source_schema) is unique, so importing the same deployment again skips the
    tenants it already brought in. No credentials of the source are kept."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="django_tenants_import")
    source_database = models.CharField(max_length=200, help_text="Server and database name, no credentials.")
    source_schema = models.CharField(max_length=63)
    source_tenant = models.CharField(max_length=64, help_text="Primary key of the django-tenants tenant row.")
    # {"workspace_member": 12, …}: rows copied per table (the source's count in the same snapshot).
    tables = models.JSONField(default=dict, blank=True)
    # Source tables that are not data-plane tables here, left where they are.
    left_out = models.JSONField(default=list, blank=True)
    domains = models.JSONField(default=list, blank=True, help_text="The django-tenants domains, primary first.")
    source_migrations = models.JSONField(default=list, blank=True, help_text="TENANT_APPS migrations the source had.")
    imported_by = models.CharField(max_length=150, blank=True)
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-imported_at"]
        constraints = [
            models.UniqueConstraint(fields=["source_database", "source_schema"], name="tenant_import_unique_source")
        ]

    def __str__(self) -> str:
        return f"{self.source_database} {self.source_schema} → {self.tenant_id}"
