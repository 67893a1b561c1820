"""Reads for the Migrations screens and API: status rows, run progress, job lists."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, IntegerField, Min, Q, QuerySet, Value, When
from django.utils import timezone

from core.errors import NotFound
from core.permissions import Role, check_role
from migration_runs import plans
from migration_runs.models import MigrationJob, MigrationRun
from tenants import migration_state
from tenants.models import MigrationState, Placement

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
    rows: Any  # a page's worth is turned into TargetStatus rows by status_rows
    total: int
    current: int
    with_pending: int
    unreachable: int
    drifted: int
    unrecorded: int  # placements the control plane has no record for yet (the next verification reads them)
    pending_names: dict[str, int]  # migration → how many targets still need it
    known_migrations: int
    live: list[plans.TargetStatus]  # the control plane and templates, read now (one database)


def _histories(tenant_only: list[plans.MigrationKey]) -> dict[tuple[str, bool], tuple[list[plans.MigrationKey], int]]:
    """Pending migrations and placement count per distinct recorded history (a handful of rows)."""
    groups = list(MigrationState.objects.values("digest", "missing").annotate(n=Count("id"), one=Min("id")))
    applied = dict(MigrationState.objects.filter(pk__in=[g["one"] for g in groups]).values_list("digest", "applied"))
    out = {}
    for g in groups:
        done = {plans.parse(name) for name in applied.get(g["digest"], [])}
        out[(g["digest"], g["missing"])] = ([k for k in tenant_only if k not in done], g["n"])
    return out


def status_overview(*, kind: str = "", state: str = "", q: str = "") -> StatusOverview:
    """Every target's applied and pending migrations for the screen: placements from the control
    plane's record (tenants.MigrationState; no tenant database is opened), the control plane and
    templates read now; then the table's filters."""
    everything, tenant_only = plans.migration_order()
    live = plans.status(plans.targets(keys=[plans.CONTROL, plans.TEMPLATE_SCHEMA, plans.TEMPLATE_DATABASE]))
    histories = _histories(tenant_only)
    pending_names: dict[str, int] = {}
    for st in live:
        for key in st.pending:
            pending_names[plans.fmt(key)] = pending_names.get(plans.fmt(key), 0) + 1
    with_pending = sum(1 for st in live if st.pending)
    behind: list[tuple[str, bool]] = []
    for history, (pending, n) in histories.items():
        for key in pending:
            pending_names[plans.fmt(key)] = pending_names.get(plans.fmt(key), 0) + n
        if pending:
            with_pending += n
            behind.append(history)
    up_to_date = [h for h, (pending, _) in histories.items() if not pending and not h[1]]
    tally = MigrationState.objects.aggregate(
        current=Count("id", filter=_history_q(up_to_date) & Q(error="")),
        unreachable=Count("id", filter=~Q(error="")),
        drifted=Count("id", filter=~Q(drift="")),
    )
    rows = Placement.objects.select_related("migration_state").order_by("id")
    live_rows = list(live)
    if kind in KIND_FILTERS:
        rows = rows.filter(kind__in=KIND_FILTERS[kind])
        live_rows = [r for r in live_rows if r.target.kind in KIND_FILTERS[kind]]
    if state == "pending":
        rows = rows.filter(_history_q(behind, "migration_state__"))
        live_rows = [r for r in live_rows if r.pending]
    elif state == "current":
        rows = rows.filter(_history_q(up_to_date, "migration_state__"), migration_state__error="")
        live_rows = [r for r in live_rows if r.is_current]
    elif state == "error":
        rows = rows.filter(migration_state__error__gt="")
        live_rows = [r for r in live_rows if r.error]
    elif state == "drift":
        rows = rows.filter(migration_state__drift__gt="")
        live_rows = []
    elif state == "unrecorded":
        rows = rows.filter(migration_state__isnull=True)
        live_rows = []
    if q:
        rows = rows.filter(Q(schema_name__icontains=q) | Q(db_name__icontains=q))
        live_rows = [r for r in live_rows if q.lower() in r.target.label.lower() or q in r.target.key]
    placements_total = Placement.objects.count()
    return StatusOverview(
        rows=_Rows(live_rows, rows, {h: p for h, (p, _) in histories.items()}),
        total=len(live) + placements_total,
        current=sum(1 for st in live if st.is_current) + tally["current"],
        with_pending=with_pending,
        unreachable=tally["unreachable"] + sum(1 for st in live if st.error),
        drifted=tally["drifted"],
        unrecorded=placements_total - sum(n for _, n in histories.values()),
        pending_names=dict(sorted(pending_names.items())),
        known_migrations=len(everything),
        live=live,
    )


def _history_q(histories: list[tuple[str, bool]], prefix: str = "") -> Q:
    """Rows with one of these recorded histories (matches nothing for an empty list)."""
    q = Q(pk__in=[])
    for digest, missing in histories:
        q |= Q(**{f"{prefix}digest": digest, f"{prefix}missing": missing})
    return q


class _Rows:
    """The table's rows for the paginator: the live targets first, then every placement with its
    record. Slicing builds TargetStatus rows for one page only."""

    def __init__(
        self,
        live: list[plans.TargetStatus],
        recorded: QuerySet[Placement],
        pending: dict[tuple[str, bool], list[plans.MigrationKey]],
    ) -> None:
        self.live, self.recorded, self.pending = live, recorded, pending

    def count(self) -> int:
        return len(self.live) + self.recorded.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[plans.TargetStatus]:
        start, stop = index.start or 0, index.stop
        head = self.live[start:stop]
        skip = max(0, start - len(self.live))
        want = None if stop is None else max(0, stop - max(start, len(self.live)))
        if want == 0:
            return head
        tail = self.recorded[skip : None if want is None else skip + want]
        return head + [self._row(p) for p in tail]

    def _row(self, placement: Placement) -> plans.TargetStatus:
        state = getattr(placement, "migration_state", None)
        target = migration_state.placement_location(placement)
        if state is None:  # not recorded yet: the next verification reads it
            return plans.TargetStatus(target=target, applied=[], pending=[])
        return plans.TargetStatus(
            target=target,
            applied=[plans.parse(name) for name in state.applied],
            pending=self.pending.get((state.digest, state.missing), []),
            missing=state.missing,
            error=state.error,
            drift=state.drift,
            verified_at=state.verified_at,
            recorded_at=state.recorded_at,
        )


def paginate(items: Any, page: Any, per_page: int = PER_PAGE) -> Page:
    return Paginator(items, per_page).get_page(page)


def run_list(*, limit: int = 20) -> list[MigrationRun]:
    """The latest runs with their target counts (counted for these runs only, not for every run ever)."""
    runs = list(MigrationRun.objects.order_by("-number")[:limit])
    counts: dict[Any, dict[str, int]] = {run.pk: dict(run.final_counts) for run in runs}
    still_counting = [run.pk for run in runs if not run.final_counts]
    rows = MigrationJob.objects.filter(run_id__in=still_counting).values_list("run_id", "state").annotate(n=Count("id"))
    for run_id, state, n in rows:
        counts[run_id][state] = n
    for run in runs:
        c = counts[run.pk]
        run.n_total = sum(c.values())  # type: ignore[attr-defined]
        run.n_failed = c.get(Job.FAILED, 0)  # type: ignore[attr-defined]
        run.n_done = c.get(Job.SUCCEEDED, 0) + c.get(Job.SKIPPED, 0)  # type: ignore[attr-defined]
    return runs


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
    rows = dict(run.jobs.values_list("state").annotate(n=Count("id")))
    counts = {s: rows.get(s, 0) for s in Job.values}
    # Waiting targets whose job is on its way (or busy with another placement first) show as queued.
    counts[Job.QUEUED] = run.jobs.filter(state=Job.PENDING, job__state__in=["queued", "running"]).count()
    counts[Job.PENDING] -= counts[Job.QUEUED]
    total = sum(counts.values())
    # Targets skipped at planning never had work; skipped later ones (applied meanwhile) did.
    skipped_at_plan = run.jobs.filter(state=Job.SKIPPED, started_at__isnull=True).count()
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
    waiting = Q(state=Job.PENDING, job__state__in=["queued", "running"])
    if status == Job.QUEUED:
        jobs = jobs.filter(waiting)
    elif status == Job.PENDING:
        jobs = jobs.filter(state=Job.PENDING).exclude(waiting)
    elif status in Job.values:
        jobs = jobs.filter(state=status)
    elif status == "open":
        jobs = jobs.filter(state__in=MigrationJob.OPEN)
    if kind in KIND_FILTERS:
        jobs = jobs.filter(kind__in=KIND_FILTERS[kind])
    if q:
        jobs = jobs.filter(Q(label__icontains=q) | Q(target=q))
    # Failures and running jobs first: that is what an operator watches.
    order = {Job.FAILED: 0, Job.RUNNING: 1, Job.QUEUED: 2, Job.PENDING: 3}
    rank = Case(
        *[When(state=s, then=Value(i)) for s, i in order.items()], default=Value(9), output_field=IntegerField()
    )
    return jobs.annotate(rank=rank).order_by("rank", "batch", "id")
