"""Operator screens for usage: the usage list (every tenant, sortable by usage), hot tenants, a tenant's
Usage tab with charts over 30 or 90 days, CSV exports, usage records (metering), and /metrics.

Viewers read; exports need Operator (they leave the system) and are audited; starting a collection
needs Operator. Every tenant is looked up through tenants.selectors.tenant_get (404 for anything else).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from audit.actions import AuditAction
from audit.services import audit_record
from core.errors import ApplicationError, InvalidInput, NotFound
from core.http import OperatorRequest
from core.permissions import Role, role_required
from core.quotas import LABELS
from tenants.selectors import tenant_get
from usage import jobs, metrics, selectors, services

PAGE_SIZE = 50


def _days(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", "30"))
    except ValueError:
        return 30
    return days if days in selectors.PERIODS else 30


def _safe(value: Any) -> Any:
    """Spreadsheet formulas defused: a cell starting with = + - @ is prefixed with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv(rows: Iterator[list[Any]], filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow([_safe(v) for v in row]) for row in rows), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@role_required(Role.VIEWER)
def usage_list(request: OperatorRequest) -> HttpResponse:
    sort = request.GET.get("sort", "storage")
    sort = sort if sort in selectors.SORTS else "storage"
    search = request.GET.get("q", "").strip()[:40]
    page = Paginator(selectors.usage_list(sort=sort, search=search), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "sort": sort,
        "sorts": list(selectors.SORTS),
        "q": search,
        "querystring": query.urlencode(),
        "hot": selectors.hot_tenants(hours=1),
        "warnings": selectors.quota_warnings(limit=10),
        "collection": jobs.collection_open(),
        "labels": LABELS,
    }
    template = "usage/list.html#results" if request.htmx else "usage/list.html"
    return render(request, template, context)


@require_POST
@role_required(Role.OPERATOR)
def collect_now(request: OperatorRequest) -> HttpResponse:
    try:
        job = jobs.collection_start(actor=request.user, request=request)
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Usage collection #{job.pk} started; the figures update when it finishes.")
    return redirect("usage:list")


@require_GET
@role_required(Role.VIEWER)
def tenant_usage(request: OperatorRequest, tenant_id: Any) -> HttpResponse:
    tenant = tenant_get(tenant_id=tenant_id, actor=request.user)
    days = _days(request)
    rows = selectors.usage_days(tenant, days=days)
    state = selectors.usage_state(tenant)
    context = {
        "tenant": tenant,
        "days": days,
        "periods": selectors.PERIODS,
        "rows": list(reversed(rows)),
        "series": selectors.usage_series(rows, days=days),
        "state": state,
        "quotas": selectors.quota_usage(tenant, state),
        "labels": LABELS,
        "warnings": selectors.quota_warnings(tenant=tenant),
    }
    return render(request, "usage/tenant.html", context)


@require_GET
@role_required(Role.OPERATOR)
def tenant_usage_csv(request: OperatorRequest, tenant_id: Any) -> HttpResponseBase:
    tenant = tenant_get(tenant_id=tenant_id, actor=request.user)
    days = _days(request)
    rows = selectors.usage_days(tenant, days=days)
    audit_record(
        actor=request.user,
        action=AuditAction.USAGE_EXPORT,
        target_type="tenant",
        target_id=tenant.pk,
        summary=f"Exported {days} days of usage of {tenant.slug}",
        request=request,
    )

    def lines() -> Iterator[list[Any]]:
        yield ["day", "members", "total_rows", "storage_bytes", "storage_estimated", "events_appended", "requests",
               "p50_ms", "p95_ms", "last_activity_at"]  # fmt: skip
        for r in rows:
            yield [r.day, r.members, r.total_rows, r.storage_bytes, r.storage_estimated, r.events_appended,
                   r.requests, r.p50_ms, r.p95_ms, r.last_activity_at.isoformat() if r.last_activity_at else ""]  # fmt: skip

    return _csv(lines(), f"usage-{tenant.slug}-{days}d.csv")


def _date(value: str, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise InvalidInput(f"The {name} date must look like 2026-12-31.") from None


@require_GET
@role_required(Role.VIEWER)
def record_list(request: OperatorRequest) -> HttpResponse:
    try:
        day_from = _date(request.GET.get("from", ""), "from")
        day_to = _date(request.GET.get("to", ""), "to")
    except InvalidInput as exc:
        messages.error(request, str(exc))
        day_from = day_to = None
    tenant = request.GET.get("tenant", "").strip()[:40]
    qs = selectors.usage_records(day_from=day_from, day_to=day_to, tenant=tenant).reverse()
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "querystring": query.urlencode(),
        "filters": {"from": day_from, "to": day_to, "tenant": tenant},
    }
    return render(request, "usage/records.html", context)


@require_GET
@role_required(Role.OPERATOR)
def record_export(request: OperatorRequest, fmt: str) -> HttpResponseBase:
    if fmt not in ("csv", "json"):
        raise NotFound("Usage records export as csv or json.")
    try:
        day_from = _date(request.GET.get("from", ""), "from")
        day_to = _date(request.GET.get("to", ""), "to")
    except InvalidInput as exc:
        return HttpResponse(str(exc), status=422, content_type="text/plain")
    records = selectors.usage_records(day_from=day_from, day_to=day_to, tenant=request.GET.get("tenant", "").strip())
    audit_record(
        actor=request.user,
        action=AuditAction.USAGE_EXPORT,
        target_type="usage_record",
        target_id="",
        summary=f"Exported usage records as {fmt.upper()}",
        request=request,
        details={"from": str(day_from or ""), "to": str(day_to or "")},
    )
    if fmt == "json":
        body = json.dumps([services.record_payload(r) for r in records.iterator()], indent=1)
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="usage-records.json"'
        return response
    header = ["tenant_id", "tenant_slug", "plan", "day", *services.RECORD_FIELDS, "sha256"]

    def lines() -> Iterator[list[Any]]:
        yield header
        for record in records.iterator():
            payload = services.record_payload(record)
            yield [payload[name] for name in header]

    return _csv(lines(), "usage-records.csv")


metrics_view = metrics.metrics_view
