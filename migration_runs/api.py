"""JSON API for cross-tenant migrations, mounted at /api/migrations/ (Viewer+ reads, Admin starts/changes runs).

POST /api/migrations/runs {"placements": null, "canary_size": 0, "dry_run": false}  → 201 {"id": …}
GET  /api/migrations/runs/{id}                                                     → status + counts
"""

from __future__ import annotations

import uuid
from datetime import datetime

from ninja import Field, Query, Router, Schema, Status

from core.api import require_api_role
from core.errors import InvalidInput
from core.permissions import Role
from migration_runs import plans, selectors, services
from migration_runs.models import MigrationRun

router = Router(tags=["migrations"])


class TargetStatusOut(Schema):
    key: str
    kind: str
    label: str
    server: str
    applied: list[str]
    pending: list[str]
    error: str
    drift: str = ""
    verified_at: datetime | None = None
    recorded: bool = True  # false: a placement not recorded yet (applied/pending unknown until verified)


class RunIn(Schema):
    placements: list[str] | None = Field(None, max_length=10000)  # target keys (see GET /status); null = all
    canary_size: int = Field(0, ge=0, le=100000, description="Placements migrated first, alone; 0: none.")
    dry_run: bool = False


class RunOut(Schema):
    id: uuid.UUID
    number: int
    status: str
    scope: str
    via: str
    triggered_by: str
    approved_by: str | None
    canary_size: int
    cancel_requested: bool
    plan: dict[str, int]
    counts: dict[str, int]
    percent: int
    per_second: float
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobOut(Schema):
    target: str
    kind: str
    label: str
    server: str
    batch: int
    status: str
    plan: list[str]
    applied: list[str]
    attempts: int
    duration_ms: int | None
    error: str
    started_at: datetime | None
    finished_at: datetime | None


class DryRunOut(Schema):
    placements: list[TargetStatusOut]
    sql: dict[str, str]


def _status_out(st: plans.TargetStatus) -> dict:
    t = st.target
    return {
        "key": t.key,
        "kind": t.kind,
        "label": t.label,
        "server": t.server,
        "applied": [plans.fmt(k) for k in st.applied],
        "pending": [plans.fmt(k) for k in st.pending],
        "error": st.error,
        "drift": st.drift,
        "verified_at": st.verified_at,
        "recorded": st.recorded,
    }


def _run_out(run: MigrationRun) -> dict:
    progress = selectors.run_progress(run)
    return {
        "id": run.pk,
        "number": run.number,
        "status": run.status,
        "scope": run.scope,
        "via": run.via,
        "triggered_by": run.created_by_label,
        "approved_by": run.approved_by.get_username() if run.approved_by else None,
        "canary_size": run.canary_size,
        "cancel_requested": run.cancel_requested,
        "plan": run.plan_summary,
        "counts": progress.counts,
        "percent": progress.percent,
        "per_second": round(progress.per_second, 3),
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


@router.get(
    "/status",
    response=list[TargetStatusOut],
    summary="Applied and pending migrations per placement (control plane and templates first, then placements by id)",
    description="Placements as the control plane recorded them (`verified_at`: when last re-read; `drift`: what "
    "that found changed). Pages of at most 1,000 rows: `offset` and `limit` are clamped to that range.",
)
def migration_status(request, pending_only: bool = False, offset: int = 0, limit: int = 1000):
    require_api_role(request, Role.VIEWER)
    rows = selectors.status_overview(state="pending" if pending_only else "").rows
    start = max(0, min(offset, 10**9))
    return [_status_out(st) for st in rows[start : start + max(1, min(limit, 1000))]]


@router.get("/runs", response=list[RunOut], summary="Recent migration runs")
def run_list(request, limit: int = Query(20, ge=1, le=100)):
    require_api_role(request, Role.VIEWER)
    return [_run_out(run) for run in selectors.run_list(limit=max(1, min(limit, 100)))]


@router.post("/runs", response={201: RunOut, 200: DryRunOut}, summary="Start a run (Admin); dry_run returns the plan")
def run_start(request, payload: RunIn):
    require_api_role(request, Role.ADMIN)
    if payload.canary_size < 0:
        raise InvalidInput("canary_size cannot be negative.")
    if payload.dry_run:
        plan = services.dry_run(target_keys=payload.placements)
        return Status(200, {"placements": [_status_out(st) for st in plan.statuses], "sql": plan.sql})
    run = services.run_start(
        actor=request.auth,
        target_keys=payload.placements,
        canary_size=payload.canary_size,
        via="api",
        request=request,
    )
    return Status(201, _run_out(run))


@router.get("/runs/{run_id}", response=RunOut, summary="One run with live counts")
def run_detail(request, run_id: uuid.UUID):
    require_api_role(request, Role.VIEWER)
    return _run_out(selectors.run_get(run_id=run_id, actor=request.auth))


@router.get("/runs/{run_id}/jobs", response=list[JobOut], summary="Per-placement jobs (failed and running first)")
def run_jobs(
    request,
    run_id: uuid.UUID,
    status: str = Query("", max_length=40),
    offset: int = Query(0, ge=0, le=10**9),
    limit: int = Query(100, ge=1, le=1000),
):
    require_api_role(request, Role.VIEWER)
    run = selectors.run_get(run_id=run_id, actor=request.auth)
    jobs = selectors.run_jobs(run, status=status)[max(0, offset) : max(0, offset) + max(1, min(limit, 1000))]
    return [{f: getattr(job, f) for f in JobOut.model_fields} for job in jobs]


def _act(request, run_id: uuid.UUID, fn):
    require_api_role(request, Role.ADMIN)
    run = selectors.run_get(run_id=run_id, actor=request.auth)
    return _run_out(fn(actor=request.auth, run=run, request=request))  # a Conflict is a 409 (core.api)


@router.post("/runs/{run_id}/cancel", response=RunOut, summary="Stop new jobs; running ones finish (Admin)")
def run_cancel(request, run_id: uuid.UUID):
    return _act(request, run_id, services.run_cancel)


@router.post("/runs/{run_id}/approve", response=RunOut, summary="Four-eyes approval by a second Admin")
def run_approve(request, run_id: uuid.UUID):
    return _act(request, run_id, services.run_approve)


@router.post("/runs/{run_id}/resume", response={201: RunOut}, summary="Re-run what failed or is pending (Admin)")
def run_resume(request, run_id: uuid.UUID):
    return Status(201, _act(request, run_id, services.run_resume))
