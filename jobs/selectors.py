"""Reads for the Jobs screen and API: keyset pages, counts, one job, where a job belongs."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet
from django.urls import NoReverseMatch, reverse

from core.permissions import Role, check_role
from jobs.models import Job
from jobs.registry import handler_for, kinds
from jobs.services import job_get

PAGE_SIZE = 50
SECRET_KEYS = ("password", "secret", "token", "_fault")


def job_for(*, job_id: Any, actor: Any) -> Job:
    """The job for an operator who may see jobs (Viewer+), or NotFound."""
    check_role(actor, Role.VIEWER)
    return job_get(job_id)


def job_list(*, kind: str = "", state: str = "", group_id: str = "") -> QuerySet[Job]:
    qs = Job.objects.all()
    if kind:
        qs = qs.filter(kind=kind[:64])
    if state in Job.State.values:
        qs = qs.filter(state=state)
    elif state == "open":
        qs = qs.filter(state__in=Job.OPEN)
    if group_id:
        qs = qs.filter(group_id=group_id[:64])
    return qs.order_by("-id")


def job_page(qs: QuerySet[Job], *, before: int | None = None, size: int = PAGE_SIZE) -> tuple[list[Job], int | None]:
    """Keyset page, newest first: rows with id < before; and the cursor of the next page (None at the end)."""
    if before:
        qs = qs.filter(id__lt=before)
    rows = list(qs[: size + 1])
    return rows[:size], (rows[size - 1].pk if len(rows) > size else None)


def job_counts() -> dict[str, int]:
    rows = dict(Job.objects.values_list("state").annotate(n=Count("id")))
    return {state: rows.get(state, 0) for state in Job.State.values}


def kinds_known() -> list[str]:
    return kinds()


def public_payload(job: Job) -> dict[str, Any]:
    """The payload without anything secret, for people."""
    return {k: v for k, v in (job.payload or {}).items() if not any(word in k for word in SECRET_KEYS)}


def operator_actions(job: Job) -> dict[str, bool]:
    """Which actions the Jobs screen offers for this job (the services decide again)."""
    try:
        allowed = handler_for(job.kind).operator_actions
    except LookupError:
        allowed = False
    return {
        "cancel": allowed
        and job.state in (Job.State.PENDING, Job.State.QUEUED, Job.State.RUNNING)
        and not job.cancel_requested,
        "retry": allowed and job.state in (Job.State.FAILED, Job.State.CANCELLED, Job.State.PENDING),
    }


def owner_link(job: Job) -> tuple[str, str] | None:
    """(label, url) of the screen that owns the job: its saga, its migration run; None for standalone jobs.
    By URL name only: the engine imports none of the apps above it."""
    names = {"saga": ("sagas:detail", "Saga"), "migration_run": ("migration_runs:run_detail", "Migration run")}
    if job.group_type in names:
        name, label = names[job.group_type]
        try:
            return f"{label} {job.group_id[:8]}", reverse(name, args=[job.group_id])
        except NoReverseMatch:
            return None
    return None
