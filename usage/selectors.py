"""Reads of usage for screens, the API and /metrics (access checks are the callers': views and endpoints)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import F, QuerySet, Sum
from django.utils import timezone

from core.charts import fill_days
from core.quotas import plan_quotas
from tenants.models import Tenant
from usage.models import QuotaWarning, UsageDaily, UsageHourly, UsageRecord, UsageState

PERIODS = (30, 90)
# How the usage list may be sorted: name → ordering (descending figures first).
SORTS: dict[str, tuple[Any, ...]] = {
    "storage": ("-storage_bytes", "tenant__slug"),
    "requests": ("-requests_24h", "tenant__slug"),
    "growth": ("-growth_7d_bytes", "tenant__slug"),
    "members": ("-members", "tenant__slug"),
    "rows": ("-total_rows", "tenant__slug"),
    "events": ("-events_total", "tenant__slug"),
    "activity": (F("last_activity_at").desc(nulls_last=True), "tenant__slug"),
    "slug": ("tenant__slug",),
}


def usage_days(tenant: Tenant, *, days: int) -> list[UsageDaily]:
    since = timezone.now().date() - dt.timedelta(days=days - 1)
    return list(UsageDaily.objects.filter(tenant=tenant, day__gte=since).order_by("day"))


def usage_series(rows: list[UsageDaily], *, days: int) -> dict[str, list[tuple[dt.date, Any]]]:
    by_day = {row.day: row for row in rows}
    mb = {day: round(row.storage_bytes / 2**20, 1) for day, row in by_day.items()}
    return {
        "requests": fill_days({d: r.requests for d, r in by_day.items()}, days=days),
        "p95": fill_days({d: round(r.p95_ms or 0) for d, r in by_day.items()}, days=days),
        "storage_mb": fill_days(mb, days=days),
        "events": fill_days({d: r.events_appended for d, r in by_day.items()}, days=days),
        "members": fill_days({d: r.members for d, r in by_day.items()}, days=days),
    }


def usage_state(tenant: Tenant) -> UsageState | None:
    return UsageState.objects.filter(tenant=tenant).first()


def quota_usage(tenant: Tenant, state: UsageState | None) -> list[dict[str, Any]]:
    """Each quota of the tenant's plan with what is used of it now (for the usage tab)."""
    today = UsageDaily.objects.filter(tenant=tenant, day=timezone.now().date()).first()
    used = {
        "members": state.members if state else 0,
        "storage_bytes": state.storage_bytes if state else 0,
        "events_per_day": today.events_appended if today else 0,
        "requests_per_minute": None,
    }
    rows = []
    for name, limit in plan_quotas(tenant.plan).items():
        value = used.get(name)
        pct = round(100 * value / limit) if (limit and value is not None) else None
        rows.append({"name": name, "limit": limit, "used": value, "pct": pct})
    return rows


def usage_list(*, sort: str = "storage", search: str = "") -> QuerySet[UsageState]:
    qs = UsageState.objects.select_related("tenant").exclude(tenant__status=Tenant.Status.DELETED)
    if search:
        qs = qs.filter(tenant__slug__icontains=search[:40])
    return qs.order_by(*SORTS.get(sort, SORTS["storage"]))


def top_tenants(*, by: str, limit: int = 5) -> list[UsageState]:
    return list(usage_list(sort=by)[:limit])


def hot_tenants(*, hours: int = 1, limit: int = 10) -> list[dict[str, Any]]:
    """Tenants with the most requests in the last `hours` hours, with their worst p95 in that time."""
    since = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=hours - 1)
    rows = (
        UsageHourly.objects.filter(hour__gte=since, requests__gt=0)
        .values("tenant_id", "tenant__slug", "tenant__name", "tenant__plan")
        .annotate(requests=Sum("requests"))
        .order_by("-requests")[:limit]
    )
    result = []
    for row in rows:
        worst = (
            UsageHourly.objects.filter(tenant_id=row["tenant_id"], hour__gte=since)
            .order_by(F("p95_ms").desc(nulls_last=True))
            .values_list("p95_ms", flat=True)
            .first()
        )
        result.append({**row, "p95_ms": worst})
    return result


def quota_warnings(*, tenant: Tenant | None = None, limit: int = 20) -> list[QuotaWarning]:
    qs = QuotaWarning.objects.select_related("tenant")
    if tenant is not None:
        qs = qs.filter(tenant=tenant)
    return list(qs[:limit])


def usage_records(*, day_from: dt.date | None = None, day_to: dt.date | None = None,
                  tenant: str = "") -> QuerySet[UsageRecord]:  # fmt: skip
    qs = UsageRecord.objects.all()
    if day_from:
        qs = qs.filter(day__gte=day_from)
    if day_to:
        qs = qs.filter(day__lte=day_to)
    if tenant:
        qs = qs.filter(tenant_slug=tenant[:40])
    return qs.order_by("day", "tenant_slug")


def totals_by_plan() -> list[dict[str, Any]]:
    """Latest figures summed per plan (bounded labels for /metrics)."""
    return list(
        UsageState.objects.exclude(tenant__status=Tenant.Status.DELETED)
        .values(plan=F("tenant__plan"))
        .annotate(
            storage=Sum("storage_bytes"),
            members=Sum("members"),
            requests=Sum("requests_24h"),
            events=Sum("events_total"),
        )
        .order_by("plan")
    )
