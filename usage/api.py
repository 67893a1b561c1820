"""JSON API of usage and metering, mounted at /api/usage/ (Viewer+ reads).

No `from __future__ import annotations`: ninja reads the annotations at runtime.
"""

import datetime as dt
import uuid

from ninja import Query, Router, Schema

from core.api import require_api_role
from core.errors import InvalidInput
from core.permissions import Role
from tenants.selectors import tenant_get
from usage import selectors, services

router = Router(tags=["usage"])


class DayOut(Schema):
    day: dt.date
    members: int
    rows: dict[str, int]
    total_rows: int
    storage_bytes: int
    storage_estimated: bool
    events_total: int
    events_appended: int
    requests: int
    p50_ms: float | None
    p95_ms: float | None
    last_activity_at: dt.datetime | None


class QuotaOut(Schema):
    name: str
    limit: int | None
    used: int | None
    pct: int | None


class TenantUsageOut(Schema):
    tenant_id: uuid.UUID
    slug: str
    plan: str
    storage_bytes: int
    storage_estimated: bool
    members: int
    total_rows: int
    events_total: int
    requests_24h: int
    growth_7d_bytes: int
    last_activity_at: dt.datetime | None
    collected_at: dt.datetime | None
    quotas: list[QuotaOut]
    days: list[DayOut]


class SummaryOut(Schema):
    tenant_id: uuid.UUID
    slug: str
    plan: str
    storage_bytes: int
    storage_estimated: bool
    requests_24h: int
    growth_7d_bytes: int
    members: int
    last_activity_at: dt.datetime | None


class RecordOut(Schema):
    tenant_id: uuid.UUID
    tenant_slug: str
    plan: str
    day: dt.date
    members: int
    storage_bytes: int
    storage_estimated: bool
    events: int
    requests: int
    p95_ms: float | None
    sha256: str


@router.get("/tenants/{tenant_id}", response=TenantUsageOut, summary="One tenant's usage over 30 or 90 days (Viewer+)")
def tenant_usage(request, tenant_id: uuid.UUID, days: int = Query(30, ge=1, le=90)):
    """Latest figures, the plan's quotas with what is used of each, and the daily rollups (oldest first)."""
    require_api_role(request, Role.VIEWER)
    if days not in selectors.PERIODS:
        raise InvalidInput("days must be 30 or 90.")
    tenant = tenant_get(tenant_id=tenant_id, actor=request.user)
    state = selectors.usage_state(tenant)
    return {
        "tenant_id": tenant.pk,
        "slug": tenant.slug,
        "plan": tenant.plan,
        "storage_bytes": state.storage_bytes if state else 0,
        "storage_estimated": state.storage_estimated if state else tenant.isolation == "shared",
        "members": state.members if state else 0,
        "total_rows": state.total_rows if state else 0,
        "events_total": state.events_total if state else 0,
        "requests_24h": state.requests_24h if state else 0,
        "growth_7d_bytes": state.growth_7d_bytes if state else 0,
        "last_activity_at": state.last_activity_at if state else None,
        "collected_at": state.collected_at if state else None,
        "quotas": selectors.quota_usage(tenant, state),
        "days": selectors.usage_days(tenant, days=days),
    }


@router.get("/top", response=list[SummaryOut], summary="Top tenants by a usage figure (Viewer+)")
def top(request, by: str = Query("storage", max_length=20), limit: int = Query(10, ge=1, le=100)):
    """`by`: storage, requests (24 h), growth (storage, 7 days), members, rows, events or activity."""
    require_api_role(request, Role.VIEWER)
    if by not in selectors.SORTS or by == "slug":
        raise InvalidInput("by must be one of storage, requests, growth, members, rows, events, activity.")
    return [
        {
            "tenant_id": s.tenant_id,
            "slug": s.tenant.slug,
            "plan": s.tenant.plan,
            "storage_bytes": s.storage_bytes,
            "storage_estimated": s.storage_estimated,
            "requests_24h": s.requests_24h,
            "growth_7d_bytes": s.growth_7d_bytes,
            "members": s.members,
            "last_activity_at": s.last_activity_at,
        }
        for s in selectors.top_tenants(by=by, limit=limit)
    ]


@router.get("/records", response=list[RecordOut], summary="Daily usage records for billing (Viewer+)")
def records(
    request,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    tenant: str = Query("", max_length=40),
    limit: int = Query(1000, ge=1, le=5000),
    offset: int = Query(0, ge=0, le=10**9),
):
    """Immutable records, oldest day first; each carries the SHA-256 of its content."""
    require_api_role(request, Role.VIEWER)
    qs = selectors.usage_records(day_from=date_from, day_to=date_to, tenant=tenant)
    return [services.record_payload(r) for r in qs[offset : offset + limit]]
