"""Compliance screens: overview, framework report, control detail, result evidence, Statement of
Applicability, access reviews, incidents, exports.

Readers (Viewer+ and Auditors) see everything; Operators start evaluations and record incidents;
Admins change controls (owner, applicability, frequency), run access reviews and record sign-in
reviews. Every check is made here, server-side; the templates only hide buttons.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import BadRequest
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit.actions import AuditAction
from audit.services import audit_record
from compliance import exports, library, selectors, services
from compliance.checks import registry
from compliance.models import Control
from core.errors import ApplicationError, InvalidInput, NotFound
from core.http import OperatorRequest
from core.permissions import Role, has_role, reader_required, role_required
from jobs.models import Job
from privacy import selectors as privacy_selectors

PAGE = 50


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise BadRequest("Dates are written YYYY-MM-DD.") from None  # the 400 page, with this sentence


def _at(request: OperatorRequest) -> datetime | None:
    """`?at=YYYY-MM-DD`: the posture at the end of that day (history), else now."""
    value = request.GET.get("at", "").strip()
    if not value:
        return None
    return datetime.combine(_day(value), time.max, tzinfo=timezone.get_current_timezone())


@require_GET
@reader_required
def overview(request: OperatorRequest) -> HttpResponse:
    at = _at(request)
    latest = selectors.latest_results(at)
    trends = selectors.trends(days=30)
    frameworks = []
    current = selectors.frameworks_current()
    counts = selectors.framework_counts(current, latest, at)
    for framework in current:
        status = counts[framework.pk]
        series = [(day, int(round(value))) for day, value in trends.get(framework.key, [])]
        frameworks.append({"framework": framework, "status": status, "trend": series})
    rows = selectors.control_rows(latest if at is None else None)
    open_job = services.evaluation_open()
    latest_job = open_job or Job.objects.filter(kind=services.EVALUATE).order_by("-id").first()
    return render(
        request,
        "compliance/overview.html",
        {
            "frameworks": frameworks,
            "rows": rows,
            "failing": [r for r in rows if r.result and r.result.status in ("fail", "error")],
            "library": library.library_current(),
            "job": latest_job,
            "at": at,
            "evaluations": selectors.evaluations_recent(5),
            "can_evaluate": has_role(request.user, Role.OPERATOR),
        },
    )


@require_POST
@role_required(Role.OPERATOR)
def evaluate(request: OperatorRequest) -> HttpResponse:
    key = request.POST.get("control", "").strip()[:60]
    try:
        job = services.evaluation_start(actor=request.user, control_keys=[key] if key else None, request=request)
        messages.success(request, f"Evaluation started (job #{job.pk}); results appear as it runs.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    if key and Control.objects.filter(key=key).exists():
        return redirect("compliance:control", key=key)
    return redirect("compliance:list")


@require_GET
@reader_required
def framework_report(request: OperatorRequest, key: str) -> HttpResponse:
    framework = selectors.framework_get(key)
    at = _at(request)
    status = selectors.framework_status(framework, at)
    state = request.GET.get("state", "")
    items = [item for item in status.requirements if not state or item.state == state]
    return render(
        request,
        "compliance/framework.html",
        {
            "framework": framework,
            "status": status,
            "items": items,
            "state": state,
            "states": selectors.REQUIREMENT_STATES,
            "at": at,
            "trend": [(d, int(round(v))) for d, v in selectors.trend(framework, days=30)],
            "export_jobs": Job.objects.filter(kind=exports.EXPORT, payload__framework_id=framework.pk).order_by("-id")[
                :5
            ],
        },
    )


@require_GET
@reader_required
def control_detail(request: OperatorRequest, key: str) -> HttpResponse:
    control = selectors.control_get(key)
    before = request.GET.get("before", "")
    history = selectors.control_history(control, limit=PAGE, before=int(before) if before.isdigit() else None)
    latest = control.results.order_by("-evaluated_at", "-id").first()
    current = library.library_current()
    requirements = control.requirements.select_related("framework").filter(framework__library=current)
    owners = User.objects.filter(is_active=True, is_staff=True).order_by("username").values_list("username", flat=True)
    return render(
        request,
        "compliance/control.html",
        {
            "control": control,
            "proves": registry.proves(control.check_name) if control.check_name else "",
            "latest": latest,
            "latest_evidence": json.dumps(latest.evidence, indent=2, sort_keys=True) if latest else "",
            "history": history,
            "next_before": history[-1].pk if len(history) == PAGE else None,
            "requirements": requirements.order_by("framework__position", "position"),
            "since": selectors.failing_since([control.pk]).get(control.pk)
            if latest and latest.status in ("fail", "error")
            else None,
            "can_evaluate": has_role(request.user, Role.OPERATOR) and control.automated,
            "can_edit": has_role(request.user, Role.ADMIN),
            "owners": owners if has_role(request.user, Role.ADMIN) else [],
            "frequencies": Control.Frequency.choices,
            "job": services.evaluation_open(),
            "attestations": control.attestations.order_by("-attested_at")[:20],
            "now": timezone.now(),
        },
    )


@require_POST
@role_required(Role.ADMIN)
def control_attest(request: OperatorRequest, key: str) -> HttpResponse:
    control = selectors.control_get(key)
    days = request.POST.get("valid_days", "")
    try:
        if not days.isdigit() or len(days) > 4:
            raise InvalidInput("An attestation is valid for 1 to 400 days.")
        services.attestation_record(
            control=control,
            actor=request.user,
            statement=request.POST.get("statement", ""),
            valid_days=int(days),
            evidence_url=request.POST.get("evidence_url", ""),
            request=request,
        )
        messages.success(request, "Attestation recorded.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("compliance:control", key=control.key)


@require_POST
@role_required(Role.ADMIN)
def control_edit(request: OperatorRequest, key: str) -> HttpResponse:
    control = selectors.control_get(key)
    try:
        services.control_update(
            control=control,
            actor=request.user,
            owner_username=request.POST.get("owner", ""),
            applicable=request.POST.get("applicable") == "yes",
            justification=request.POST.get("justification", ""),
            frequency=request.POST.get("frequency", control.frequency),
            request=request,
        )
        messages.success(request, "Control updated.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("compliance:control", key=control.key)


@require_GET
@reader_required
def result_detail(request: OperatorRequest, result_id: int) -> HttpResponse:
    result = selectors.result_get(result_id)
    recomputed = services.evidence_hash(result.evidence)
    return render(
        request,
        "compliance/result.html",
        {
            "result": result,
            "evidence": json.dumps(result.evidence, indent=2, sort_keys=True),
            "recomputed": recomputed,
            "verifies": recomputed == result.evidence_sha256,
        },
    )


@require_GET
@reader_required
def soa(request: OperatorRequest) -> HttpResponse:
    """ISO 27001 Statement of Applicability: every Annex A control, applicable or not and why, and its state."""
    framework = selectors.framework_get("iso27001")
    status = selectors.framework_status(framework)
    return render(request, "compliance/soa.html", {"framework": framework, "status": status})


@require_GET
@reader_required
def export_report(request: OperatorRequest, key: str, fmt: str) -> HttpResponse:
    if fmt not in exports.FORMATS:
        raise NotFound("Exports are csv, json, zip or oscal.")
    framework = selectors.framework_get(key)
    at = _at(request)
    audit_record(
        actor=request.user,
        action=AuditAction.COMPLIANCE_EXPORT,
        target_type="compliance_framework",
        target_id=framework.key,
        summary=f"Exported the {framework.name} report as {fmt.upper()}",
        request=request,
    )
    stamp = (at or timezone.now()).strftime("%Y%m%d")
    data = exports.export_bytes(framework, fmt, period_from=None, period_to=at)
    response = HttpResponse(data, content_type=exports.FORMATS[fmt])
    suffix = "oscal.json" if fmt == "oscal" else fmt
    response["Content-Disposition"] = f'attachment; filename="compliance-{framework.key}-{stamp}.{suffix}"'
    response["X-Content-SHA256"] = exports.sha256(data)
    return response


TENANT_REQUESTS_SHOWN = 20


@require_GET
@reader_required
def tenant_page(request: OperatorRequest, tenant_id: str) -> HttpResponse:
    """One tenant: its isolation level and placement, the checks that concern its placement, its requests."""
    tenant = selectors.tenant_get(tenant_id)
    requests = list(privacy_selectors.request_list(tenant=tenant.slug)[:TENANT_REQUESTS_SHOWN])
    return render(
        request,
        "compliance/tenant.html",
        {
            "tenant": tenant,
            "checks": selectors.tenant_checks(tenant),
            "requests": requests,
            "shown": TENANT_REQUESTS_SHOWN,
        },
    )


@require_POST
@reader_required
def export_job(request: OperatorRequest, key: str) -> HttpResponse:
    """Build an export as a job (for long periods): progress on the framework page, then a download."""
    framework = selectors.framework_get(key)
    start = request.POST.get("from", "").strip()
    end = request.POST.get("to", "").strip()
    zone = timezone.get_current_timezone()
    try:
        job = exports.export_start(
            framework=framework,
            fmt=request.POST.get("format", "zip"),
            actor=request.user,
            period_from=datetime.combine(_day(start), time.min, tzinfo=zone) if start else None,
            period_to=datetime.combine(_day(end), time.max, tzinfo=zone) if end else None,
            request=request,
        )
        messages.success(request, f"Export started (job #{job.pk}); the download appears here when it is ready.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("compliance:framework", key=framework.key)


@require_GET
@reader_required
def export_download(request: OperatorRequest, job_id: int) -> HttpResponse:
    found = exports.export_file_get(job_id)
    response = HttpResponse(bytes(found.data), content_type=found.content_type)
    response["Content-Disposition"] = f'attachment; filename="{found.name}"'
    response["X-Content-SHA256"] = found.sha256
    return response
