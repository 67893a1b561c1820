"""The Jobs screen: every background job with its state, attempts, progress and error; cancel and retry.

Viewer+ reads; Operator+ cancels and retries kinds that allow it (sagas and migration runs have
their own screens and rules). Checked here, server-side; the templates only hide buttons.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.errors import ApplicationError
from core.http import OperatorRequest
from core.permissions import Role, role_required
from jobs import selectors, services
from jobs.models import Job


@require_GET
@role_required(Role.VIEWER)
def job_list(request: OperatorRequest) -> HttpResponse:
    kind = request.GET.get("kind", "").strip()[:64].replace("\x00", "")
    state = request.GET.get("state", "").strip()[:16]
    before = request.GET.get("before", "")
    qs = selectors.job_list(kind=kind, state=state)
    rows, next_before = selectors.job_page(qs, before=int(before) if before.isdigit() and len(before) < 19 else None)
    for job in rows:
        job.owner = selectors.owner_link(job)  # type: ignore[attr-defined]  # for the template
    context = {
        "jobs": rows,
        "next_before": next_before,
        "first_page": not before,
        "filters": {"kind": kind, "state": state},
        "kinds": selectors.kinds_known(),
        "states": [("open", "Not finished"), *Job.State.choices],
        "counts": selectors.job_counts(),
        "live": any(job.is_open for job in rows),
    }
    template = "jobs/list.html#job-table" if request.htmx else "jobs/list.html"
    return render(request, template, context)


@require_GET
@role_required(Role.VIEWER)
def job_detail(request: OperatorRequest, job_id: int) -> HttpResponse:
    job = selectors.job_for(job_id=job_id, actor=request.user)
    context = {
        "job": job,
        "payload": selectors.public_payload(job),
        "actions": selectors.operator_actions(job),
        "owner": selectors.owner_link(job),
    }
    template = "jobs/detail.html#job-live" if request.htmx else "jobs/detail.html"
    return render(request, template, context)


@require_GET
@role_required(Role.VIEWER)
def job_progress(request: OperatorRequest, job_id: int) -> HttpResponse:
    """The live progress fragment any screen can embed: `{% include "jobs/_progress.html" with job=… %}`."""
    job = selectors.job_for(job_id=job_id, actor=request.user)
    return render(request, "jobs/_progress.html", {"job": job})


def _act(request: OperatorRequest, job_id: int, action, done: str) -> HttpResponse:
    try:
        job = action(job_id=job_id, actor=request.user, request=request)
    except ApplicationError as exc:
        if exc.status in (403, 404):
            raise
        messages.error(request, str(exc))
    else:
        messages.success(request, done.format(job=job))
    return redirect("jobs:detail", job_id=job_id)


@require_POST
@role_required(Role.OPERATOR)
def job_cancel(request: OperatorRequest, job_id: int) -> HttpResponse:
    selectors.job_for(job_id=job_id, actor=request.user)
    return _act(request, job_id, services.job_cancel, "Job #{job.pk}: cancellation recorded.")


@require_POST
@role_required(Role.OPERATOR)
def job_retry(request: OperatorRequest, job_id: int) -> HttpResponse:
    selectors.job_for(job_id=job_id, actor=request.user)
    return _act(request, job_id, services.job_retry, "Job #{job.pk} is queued again.")
