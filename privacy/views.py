"""Privacy screens: data-subject requests, download links, legal holds, the record of processing.

Viewer+ reads. Operator+ opens access requests and makes download links; Admin only for erasure
and legal holds. Checked here, server-side; templates only hide buttons. The download link itself
needs no sign-in (it is handed to the data subject): it is single-use, expiring and audited.
"""

from __future__ import annotations

import csv
import datetime as dt
import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from audit.actions import AuditAction
from audit.services import audit_record
from core.errors import ApplicationError, InvalidInput, NotFound
from core.http import OperatorRequest
from core.instants import parse_instant
from core.permissions import Role, check_role, has_role, role_required
from core.personal_data import Category
from privacy import retention as rules
from privacy import selectors, services
from privacy.models import RequestKind, RequestStatus, RetentionRun
from tenants.models import Tenant

PAGE_SIZE = 25


def _tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.select_related("placement").filter(slug=(slug or "").strip()[:40]).first()
    if tenant is None:
        raise InvalidInput("No tenant with that slug.")
    return tenant


def _clean(value: str, limit: int = 40) -> str:
    return (value or "").replace("\x00", "").strip()[:limit]


@require_GET
@role_required(Role.VIEWER)
def request_list(request: OperatorRequest) -> HttpResponse:
    filters = {k: _clean(request.GET.get(k, "")) for k in ("kind", "status", "tenant")}
    page = Paginator(selectors.request_list(**filters), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "kinds": RequestKind.choices,
        "statuses": [*RequestStatus.choices, ("overdue", "Overdue")],
        "counts": selectors.request_counts(),
        "tenants": Tenant.objects.exclude(placement=None).order_by("slug").values_list("slug", flat=True)[:500],
    }
    template = "privacy/list.html#request-table" if request.htmx else "privacy/list.html"
    return render(request, template, context)


@require_POST
@role_required(Role.OPERATOR)
def request_open(request: OperatorRequest) -> HttpResponse:
    kind = request.POST.get("kind", "")
    if kind == RequestKind.ERASURE:
        check_role(request.user, Role.ADMIN)
    try:
        opened = services.request_open(
            tenant=_tenant(request.POST.get("tenant", "")),
            email=request.POST.get("email", ""),
            kind=kind,
            actor=request.user,
            request=request,
        )
    except ApplicationError as exc:
        if exc.status in (403, 404):
            raise
        messages.error(request, str(exc))
        return redirect("privacy:list")
    messages.success(request, f"{opened.get_kind_display()} request opened; the work is running.")
    return redirect("privacy:detail", request_id=opened.pk)


@require_GET
@role_required(Role.VIEWER)
def request_detail(request: OperatorRequest, request_id: str) -> HttpResponse:
    subject_request = selectors.request_get(request_id=request_id, actor=request.user)
    context = {
        "req": subject_request,
        "proof": getattr(subject_request, "proof", None) if subject_request.kind == RequestKind.ERASURE else None,
        "links": subject_request.links.all()[:20],
        "saga_steps": list(subject_request.saga.steps.order_by("index")) if subject_request.saga else [],
        "new_link": request.session.pop("privacy_new_link", ""),
    }
    return render(request, "privacy/detail.html", context)


@require_POST
@role_required(Role.ADMIN)
def erasure_decide(request: OperatorRequest, request_id: str, decision: str) -> HttpResponse:
    """A second Admin approves or rejects an erasure someone else opened (PRIVACY_ERASURE_REQUIRE_APPROVAL)."""
    subject_request = selectors.request_get(request_id=request_id, actor=request.user)
    decide = services.erasure_approve if decision == "approve" else services.erasure_reject
    try:
        decide(subject_request=subject_request, actor=request.user, request=request)
    except ApplicationError as exc:
        if exc.status == 404:
            raise
        messages.error(request, str(exc))
    else:
        messages.success(request, "Erasure approved: it runs now." if decision == "approve" else "Erasure rejected.")
    return redirect("privacy:detail", request_id=subject_request.pk)


@require_POST
@role_required(Role.OPERATOR)
def link_create(request: OperatorRequest, request_id: str) -> HttpResponse:
    subject_request = selectors.request_get(request_id=request_id, actor=request.user)
    try:
        token = services.link_create(subject_request=subject_request, actor=request.user, request=request)
    except ApplicationError as exc:
        if exc.status in (403, 404):
            raise
        messages.error(request, str(exc))
    else:
        # Shown once on the next page; only its hash is stored.
        request.session["privacy_new_link"] = request.build_absolute_uri(f"/privacy/download/{token}/")
    return redirect("privacy:detail", request_id=subject_request.pk)


@require_GET
def download(request: HttpRequest, token: str) -> FileResponse:
    try:
        subject_request, path = services.link_redeem(token=token, request=request)
    except NotFound as exc:
        raise Http404(str(exc)) from None
    response = FileResponse(path.open("rb"), as_attachment=True, filename=f"data-{subject_request.pk}.zip")
    response["Cache-Control"] = "no-store"
    return response


# --- legal holds ------------------------------------------------------------------------------------


@require_GET
@role_required(Role.VIEWER)
def hold_list(request: OperatorRequest) -> HttpResponse:
    page = Paginator(selectors.hold_list(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "privacy/holds.html",
        {
            "page": page,
            "can_hold": has_role(request.user, Role.ADMIN),
            "tenants": Tenant.objects.order_by("slug").values_list("slug", flat=True)[:500],
        },
    )


@require_POST
@role_required(Role.ADMIN)
def hold_place(request: OperatorRequest) -> HttpResponse:
    until_raw = _clean(request.POST.get("until", ""), 40)
    try:
        until = parse_instant(until_raw) if until_raw else None
        if until_raw and until is None:
            raise InvalidInput("Please give the end date as 2026-12-31, or leave it empty.")
        services.hold_place(
            tenant=_tenant(request.POST.get("tenant", "")),
            email=request.POST.get("email", ""),
            reason=request.POST.get("reason", ""),
            until=until,
            actor=request.user,
            request=request,
        )
    except ApplicationError as exc:
        if exc.status in (403, 404):
            raise
        messages.error(request, str(exc))
    else:
        messages.success(request, "Legal hold placed: erasure and retention purges stop for it.")
    return redirect("privacy:holds")


@require_POST
@role_required(Role.ADMIN)
def hold_release(request: OperatorRequest, hold_id: int) -> HttpResponse:
    try:
        services.hold_release(hold_id=hold_id, actor=request.user, request=request)
    except ApplicationError as exc:
        if exc.status in (403, 404):
            raise
        messages.error(request, str(exc))
    else:
        messages.success(request, "Legal hold released.")
    return redirect("privacy:holds")


# --- record of processing ---------------------------------------------------------------------------


@require_GET
@role_required(Role.VIEWER)
def processing(request: OperatorRequest) -> HttpResponse:
    category = _clean(request.GET.get("category", ""), 20)
    rows = selectors.processing_record(category=category)
    return render(
        request,
        "privacy/processing.html",
        {"rows": rows, "category": category, "categories": Category.choices},
    )


@require_GET
@role_required(Role.OPERATOR)
def processing_export(request: OperatorRequest, fmt: str) -> HttpResponse:
    if fmt not in ("csv", "json"):
        raise Http404("The record of processing exports as .csv or .json.")
    rows = selectors.processing_record()
    audit_record(
        actor=request.user,
        action=AuditAction.PRIVACY_PROCESSING_EXPORT,
        target_type="processing_record",
        summary=f"Record of processing exported as {fmt.upper()}",
        request=request,
        details={"rows": len(rows)},
    )
    stamp = dt.date.today().isoformat()
    if fmt == "json":
        response = HttpResponse(
            json.dumps({"generated_on": stamp, "fields": rows}, indent=2), content_type="application/json"
        )
    else:
        response = HttpResponse(content_type="text/csv")
        writer = csv.DictWriter(response, fieldnames=list(selectors.PROCESSING_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    response["Content-Disposition"] = f'attachment; filename="record-of-processing-{stamp}.{fmt}"'
    return response


# --- retention --------------------------------------------------------------------------------------


@require_GET
@role_required(Role.VIEWER)
def retention(request: OperatorRequest) -> HttpResponse:
    runs = Paginator(RetentionRun.objects.select_related("job"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "privacy/retention.html", {"policies": rules.policies(), "page": runs})


@require_POST
@role_required(Role.ADMIN)
def retention_set(request: OperatorRequest, category: str) -> HttpResponse:
    try:
        rules.policy_set(
            category=category,
            days=_clean(request.POST.get("days", ""), 12),
            enabled=request.POST.get("enabled") == "on",
            actor=request.user,
            request=request,
        )
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Retention policy saved; the next daily run applies it.")
    return redirect("privacy:retention")
