"""Reads for the Migrations screens and API: status rows, run progress, job lists."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, IntegerField, Q, Value, When
from django.utils import timezone

from core.errors import NotFound
from core.permissions import Role, check_role
from migration_runs import plans
from migration_runs.models import MigrationJob, MigrationRun

Job = MigrationJob.Status
PER_PAGE = 50
KIND_FILTERS = {
    "control": ("control",),
    "template": ("template_schema", "template_database"),
    "pool": ("pool",),
    "schema": ("schema",),
    "database": ("database",),
}


@dataclass
class StatusOverview:
    rows: list[plans.TargetStatus]
    total: int
    current: int
    with_pending: int
    unreachable: int
    pending_names: dict[str, int]  # migration → how many targets still need it
    known_migrations: int


def status_overview(*, kind: str = "", state: str = "", q: str = "") -> StatusOverview:
    """Every target's applied/pending migrations (bulk read), then filtered for the table."""
    everything = plans.status()
    pending_names: dict[str, int] = {}
    for st in everything:
        for key in st.pending:
            pending_names[plans.fmt(key)] = pending_names.get(plans.fmt(key), 0) + 1
    rows = everything
    if kind in KIND_FILTERS:
        rows = [r for r in rows if r.target.kind in KIND_FILTERS[kind]]
    if state == "pending":
        rows = [r for r in rows if r.pending]
    elif state == "current":
        rows = [r for r in rows if r.is_current]
    elif state == "error":
        rows = [r for r in rows if r.error]
    if q:
        needle = q.lower()
        rows = [r for r in rows if needle in r.target.label.lower() or needle in r.target.key]
    all_order, _tenant = plans.migration_order()
    return StatusOverview(
        rows=rows,
        total=len(everything),
        current=sum(1 for r in everything if r.is_current),
        with_pending=sum(1 for r in everything if r.pending),
        unreachable=sum(1 for r in everything if r.error),
        pending_names=dict(sorted(pending_names.items())),
        known_migrations=len(all_order),
    )


def paginate(items: Any, page: Any, per_page: int = PER_PAGE) -> Page:
    return Paginator(items, per_page).get_page(page)


def run_list(*, limit: int = 20) -> list[MigrationRun]:
    return list(
        MigrationRun.objects.annotate(
            n_total=Count("jobs"),
            n_failed=Count("jobs", filter=Q(jobs__job__state=Job.FAILED)),
            n_done=Count("jobs", filter=Q(jobs__job__state__in=[Job.SUCCEEDED, Job.SKIPPED])),
        ).order_by("-number")[:limit]
    )


def run_get(*, run_id: Any, actor: Any) -> MigrationRun:
    """The run for an operator who may see runs (Viewer+), or NotFound (a malformed id is not found either)."""
    check_role(actor, Role.VIEWER)
    try:
        run_id = uuid.UUID(str(run_id))
    except ValueError:
        raise NotFound("No such migration run.") from None
    run = MigrationRun.objects.select_related("created_by", "approved_by", "resumed_from").filter(pk=run_id).first()
    if run is None:
        raise NotFound("No such migration run.")
    return run


@dataclass
class Progress:
    counts: dict[str, int]
    total: int
    with_work: int
    finished: int  # jobs with work that reached an end state
    failed: int
    open: int
    percent: int
    elapsed_seconds: float
    per_second: float
    eta_seconds: float | None
    ok_percent: int
    failed_percent: int


def run_progress(run: MigrationRun) -> Progress:
    rows = dict(run.jobs.values_list("job__state").annotate(n=Count("id")))
    counts = {s: rows.get(s, 0) for s in Job.values}
    total = sum(counts.values())
    # Jobs skipped at planning never had work; skipped later ones (applied meanwhile) did.
    skipped_at_plan = run.jobs.filter(job__state=Job.SKIPPED, job__started_at__isnull=True).count()
    with_work = total - skipped_at_plan
    finished = counts[Job.SUCCEEDED] + counts[Job.FAILED] + (counts[Job.SKIPPED] - skipped_at_plan)
    open_ = counts[Job.PENDING] + counts[Job.QUEUED] + counts[Job.RUNNING]
    end = run.finished_at or timezone.now()
    elapsed = (end - run.started_at).total_seconds() if run.started_at else 0.0
    per_second = finished / elapsed if elapsed > 0 else 0.0
    eta = (open_ / per_second) if per_second > 0 and open_ and not run.is_finished else None
    percent = 100 if with_work == 0 else int(100 * (finished + counts[Job.CANCELLED]) / with_work)
    return Progress(
        counts=counts,
        total=total,
        with_work=with_work,
        finished=finished,
        failed=counts[Job.FAILED],
        open=open_,
        percent=min(percent, 100),
        elapsed_seconds=elapsed,
        per_second=per_second,
        eta_seconds=eta,
        ok_percent=_pct(finished - counts[Job.FAILED] + counts[Job.CANCELLED], with_work),
        failed_percent=_pct(counts[Job.FAILED], with_work),
    )


def _pct(part: int, whole: int) -> int:
    return 100 if whole == 0 and part == 0 else (int(100 * part / whole) if whole else 0)


def run_jobs(run: MigrationRun, *, status: str = "", q: str = "", kind: str = ""):
    jobs = run.jobs.select_related("job")
    if status in Job.values:
        jobs = jobs.filter(job__state=status)
    elif status == "open":
        jobs = jobs.filter(job__state__in=MigrationJob.OPEN)
    if kind in KIND_FILTERS:
        jobs = jobs.filter(kind__in=KIND_FILTERS[kind])
    if q:
        jobs = jobs.filter(Q(label__icontains=q) | Q(target=q))
    # Failures and running jobs first: that is what an operator watches.
    order = {Job.FAILED: 0, Job.RUNNING: 1, Job.QUEUED: 2, Job.PENDING: 3}
    rank = Case(
        *[When(job__state=s, then=Value(i)) for s, i in order.items()], default=Value(9), output_field=IntegerField()
    )
    return jobs.annotate(rank=rank).order_by("rank", "batch", "id")
