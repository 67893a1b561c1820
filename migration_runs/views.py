"""Migrations screens: status per placement, start/dry-run, live run progress, cancel/approve/resume.

Viewers and up see everything; only Admins start, cancel, approve, reject or
resume runs (checked here, server-side; the templates only hide buttons).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.errors import ApplicationError, Forbidden
from core.http import OperatorRequest
from core.permissions import Role, has_role, role_required
from migration_runs import selectors, services, verification
from migration_runs.models import MigrationJob, MigrationRun

MAX_CANARY = 10_000


@require_GET
@role_required(Role.VIEWER)
def migration_status(request: OperatorRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    state = request.GET.get("state", "")
    q = request.GET.get("q", "").strip()[:100]
    overview = selectors.status_overview(kind=kind, state=state, q=q)
    page = selectors.paginate(overview.rows, request.GET.get("page"))
    context = {
        "overview": overview,
        "page": page,
        "filters": {"kind": kind, "state": state, "q": q},
        "query": urlencode({k: v for k, v in {"kind": kind, "state": state, "q": q}.items() if v}),
        "runs": selectors.run_list(limit=10),
        "can_start": has_role(request.user, Role.ADMIN),
        "requires_approval": settings.MIGRATIONS_REQUIRE_APPROVAL,
        "kinds": [
            ("", "All kinds"),
            ("control", "Control plane"),
            ("template", "Templates"),
            ("pool", "Pools"),
            ("schema", "Schemas"),
            ("database", "Dedicated databases"),
        ],
        "states": [
            ("", "Any state"),
            ("pending", "Has pending"),
            ("current", "Up to date"),
            ("error", "Unreachable"),
            ("drift", "Drifted"),
            ("unrecorded", "Not recorded yet"),
        ],
        "verification": verification.verification_latest(),
        "can_verify": has_role(request.user, Role.OPERATOR),
    }
    template = "migration_runs/status.html#status-table" if request.htmx else "migration_runs/status.html"
    return render(request, template, context)


@require_POST
@role_required(Role.OPERATOR)
def verify(request: OperatorRequest) -> HttpResponse:
    """Re-read every placement's migrations now (the schedule does it every
    MIGRATIONS_VERIFY_INTERVAL_SECONDS); progress shows on the Migrations screen."""
    try:
        verification.verification_start(actor=request.user, request=request)
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Verification started: every placement's migrations are read again.")
    return redirect("migration_runs:list")


def _parse_start(request: OperatorRequest) -> tuple[list[str] | None, int]:
    scope = request.POST.get("scope", "all")
    keys = None
    if scope == "selected":
        keys = [k for k in request.POST.getlist("targets") if k][:100_000]
        if not keys:
            raise services.MigrationRunError("Choose at least one placement, or start the run over all of them.")
    elif scope != "all":
        raise services.MigrationRunError("Choose “all placements” or “chosen placements”.")
    raw = request.POST.get("canary_size", "").strip() or "0"
    if not raw.isdigit() or int(raw) > MAX_CANARY:
        raise services.MigrationRunError(f"The canary batch size must be a whole number from 0 to {MAX_CANARY}.")
    return keys, int(raw)


@require_POST
@role_required(Role.ADMIN)
def run_start(request: OperatorRequest) -> HttpResponse:
    try:
        keys, canary = _parse_start(request)
        if request.POST.get("dry_run"):
            plan = services.dry_run(target_keys=keys)
            return render(request, "migration_runs/dry_run.html", {"plan": plan, "canary": canary})
        run = services.run_start(actor=request.user, target_keys=keys, canary_size=canary, via="web", request=request)
    except ApplicationError as exc:
        messages.error(request, str(exc))
        return redirect("migration_runs:list")
    if run.status == MigrationRun.Status.AWAITING_APPROVAL:
        messages.info(request, f"Run #{run.number} waits for a second Admin's approval.")
    return redirect("migration_runs:run_detail", run_id=run.pk)


@require_GET
@role_required(Role.VIEWER)
def run_detail(request: OperatorRequest, run_id) -> HttpResponse:
    run = selectors.run_get(run_id=run_id, actor=request.user)
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "")
    q = request.GET.get("q", "").strip()[:100]
    page = selectors.paginate(selectors.run_jobs(run, status=status, q=q, kind=kind), request.GET.get("page"))
    context = {
        "run": run,
        "progress": selectors.run_progress(run),
        "page": page,
        "filters": {"status": status, "kind": kind, "q": q},
        "query": urlencode({k: v for k, v in {"status": status, "kind": kind, "q": q}.items() if v}),
        "statuses": [("", "Any status"), ("open", "Not finished"), *MigrationJob.Status.choices],
        "can_admin": has_role(request.user, Role.ADMIN),
        "can_approve": has_role(request.user, Role.ADMIN) and run.created_by_id != request.user.pk,
    }
    template = "migration_runs/run_detail.html#live" if request.htmx else "migration_runs/run_detail.html"
    return render(request, template, context)


def _action(request: OperatorRequest, run_id, fn, done: str) -> HttpResponse:
    run = selectors.run_get(run_id=run_id, actor=request.user)
    try:
        result = fn(actor=request.user, run=run, request=request)
    except ApplicationError as exc:  # a Forbidden is also a PermissionDenied: re-raised as the 403 page
        if isinstance(exc, Forbidden):
            raise
        messages.error(request, str(exc))
        return redirect("migration_runs:run_detail", run_id=run.pk)
    messages.success(request, done.format(run=run, result=result))
    target = result if isinstance(result, MigrationRun) else run
    return redirect("migration_runs:run_detail", run_id=target.pk)


@require_POST
@role_required(Role.ADMIN)
def run_cancel(request: OperatorRequest, run_id) -> HttpResponse:
    return _action(request, run_id, services.run_cancel, "Run #{run.number}: no new jobs start; running ones finish.")


@require_POST
@role_required(Role.ADMIN)
def run_approve(request: OperatorRequest, run_id) -> HttpResponse:
    return _action(request, run_id, services.run_approve, "Run #{run.number} approved and started.")


@require_POST
@role_required(Role.ADMIN)
def run_reject(request: OperatorRequest, run_id) -> HttpResponse:
    return _action(request, run_id, services.run_reject, "Run #{run.number} rejected.")


@require_POST
@role_required(Role.ADMIN)
def run_resume(request: OperatorRequest, run_id) -> HttpResponse:
    return _action(
        request, run_id, services.run_resume, "Run #{result.number} resumes what run #{run.number} did not finish."
    )
