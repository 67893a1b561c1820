"""Usage of each tenant in the control plane: hourly and daily rollups, the collector's cursor, quota
warnings, and the immutable daily usage records billing reads (docs/usage.md).

Rollups hold *totals* for their hour or day (not increments), so the collector can rewrite the open
hour and day on every run and a rerun after a crash changes nothing. Storage for pool tenants is an
estimate (their share of rows × the pool tables' size) and says so in `storage_estimated`.
"""

from __future__ import annotations

from django.db import models


class UsageFigures(models.Model):
    members = models.PositiveIntegerField(default=0)
    rows = models.JSONField(default=dict, help_text="Rows per data-plane table.")
    total_rows = models.BigIntegerField(default=0)
    storage_bytes = models.BigIntegerField(default=0)
    storage_estimated = models.BooleanField(default=False, help_text="Pool tenants: a share of the pool's tables.")
    events_total = models.BigIntegerField(default=0, help_text="Events in the tenant's log at collection time.")
    events_appended = models.BigIntegerField(default=0, help_text="Events appended in this hour or day.")
    requests = models.BigIntegerField(default=0)
    latency_buckets = models.JSONField(default=list, help_text="Request counts per latency bucket (core.requestmeter).")
    p50_ms = models.FloatField(null=True, blank=True)
    p95_ms = models.FloatField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    collected_at = models.DateTimeField()

    class Meta:
        abstract = True


class UsageHourly(UsageFigures):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="usage_hours")
    hour = models.DateTimeField(help_text="Start of the hour (UTC).")

    class Meta:
        ordering = ["tenant_id", "hour"]
        constraints = [models.UniqueConstraint(fields=["tenant", "hour"], name="usage_hourly_unique")]
        indexes = [models.Index(fields=["hour"], name="usage_hourly_hour")]

    def __str__(self) -> str:
        return f"usage of {self.tenant_id} at {self.hour:%Y-%m-%d %H}:00"


class UsageDaily(UsageFigures):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="usage_days")
    day = models.DateField()

    class Meta:
        ordering = ["tenant_id", "day"]
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="usage_daily_unique")]
        indexes = [models.Index(fields=["day"], name="usage_daily_day")]

    def __str__(self) -> str:
        return f"usage of {self.tenant_id} on {self.day}"


class UsageState(models.Model):
    """Per tenant: where incremental collection resumes, and the latest figures (the sortable tenant list)."""

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, primary_key=True, related_name="usage")
    # Events of the tenant's log before `frozen_until` (hours that left the collector's open window);
    # later hours are recounted on every run (usage.collection).
    events_frozen = models.BigIntegerField(default=0)
    frozen_until = models.DateTimeField(null=True, blank=True)
    events_total = models.BigIntegerField(default=0)
    members = models.PositiveIntegerField(default=0)
    total_rows = models.BigIntegerField(default=0)
    storage_bytes = models.BigIntegerField(default=0)
    storage_estimated = models.BooleanField(default=False)
    requests_24h = models.BigIntegerField(default=0)
    growth_7d_bytes = models.BigIntegerField(default=0, help_text="Storage now minus storage seven days ago.")
    last_activity_at = models.DateTimeField(null=True, blank=True)
    collected_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, help_text="Why the last collection could not read it.")

    class Meta:
        ordering = ["tenant_id"]

    def __str__(self) -> str:
        return f"usage state of {self.tenant_id}"


class QuotaWarning(models.Model):
    """A figure reached 80 % or 100 % of its plan's quota in a period; one row per (tenant, quota, level,
    period), so the warning (and the owner's email) happens once."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="quota_warnings")
    quota = models.CharField(max_length=32)
    level = models.PositiveSmallIntegerField(help_text="80 or 100 (per cent).")
    period = models.CharField(max_length=20, help_text="The day (events) or month (standing figures) it is about.")
    value = models.BigIntegerField()
    limit = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "quota", "level", "period"], name="quota_warning_once"),
        ]

    def __str__(self) -> str:
        return f"{self.quota} at {self.level} % for {self.tenant_id} ({self.period})"


class UsageRecord(models.Model):
    """One tenant's metered usage for one day: written once, never changed (the app role may only
    SELECT and INSERT it), so re-running a day changes nothing and billing can trust it."""

    # Not a foreign key: billing records outlive the tenant (and a NOT NULL `tenant_id` column would read
    # as data-plane to the RLS catalog audit).
    tenant_uuid = models.UUIDField()
    tenant_slug = models.CharField(max_length=40)
    plan = models.CharField(max_length=12)
    day = models.DateField()
    members = models.PositiveIntegerField()
    storage_bytes = models.BigIntegerField()
    storage_estimated = models.BooleanField()
    events = models.BigIntegerField()
    requests = models.BigIntegerField()
    p95_ms = models.FloatField(null=True)
    sha256 = models.CharField(max_length=64, help_text="Of the record's canonical JSON: evidence it never changed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day", "tenant_slug"]
        constraints = [models.UniqueConstraint(fields=["tenant_uuid", "day"], name="usage_record_once")]
        indexes = [models.Index(fields=["day"], name="usage_record_day")]

    def __str__(self) -> str:
        return f"usage record of {self.tenant_slug} on {self.day}"
