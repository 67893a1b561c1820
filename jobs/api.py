"""JSON API of the job engine, mounted at /api/jobs/ (Viewer+ reads; Operator+ cancels and retries).

No `from __future__ import annotations`: ninja reads the annotations at runtime.
"""

from datetime import datetime

from ninja import Field, Query, Router, Schema

from core.api import require_api_role
from core.errors import InvalidInput
from core.permissions import Role
from jobs import selectors, services
from jobs.models import Job

router = Router(tags=["jobs"])


class JobOut(Schema):
    id: int
    kind: str
    state: str
    group_type: str
    group_id: str
    batch: int
    attempts: int
    max_attempts: int
    progress_done: int
    progress_total: int | None
    percent: int | None
    progress_note: str
    error: str
    cancel_requested: bool
    worker: str
    requested_by: str = Field(alias="requested_by_label")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None


class JobPageOut(Schema):
    jobs: list[JobOut]
    next_before: int | None


@router.get("/", response=JobPageOut, summary="Background jobs, newest first (Viewer+)")
def jobs_list(
    request,
    kind: str = Query("", max_length=100),
    state: str = Query("", max_length=20),
    before: int | None = Query(None, ge=1, le=2**62),
    limit: int = Query(50, ge=1, le=500),
):
    """Keyset pages: pass `next_before` as `before` for the next (older) page. `state=open`: not finished."""
    require_api_role(request, Role.VIEWER)
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be between 1 and 500.")
    if state and state != "open" and state not in Job.State.values:
        raise InvalidInput(f"Unknown state; use open or one of: {', '.join(Job.State.values)}.")
    if before is not None and not 0 < before < 2**63:
        raise InvalidInput("before must be a job id from a previous page.")
    rows, next_before = selectors.job_page(selectors.job_list(kind=kind, state=state), before=before, size=limit)
    return {"jobs": rows, "next_before": next_before}


@router.get("/{job_id}", response=JobOut, summary="One job (Viewer+)")
def jobs_detail(request, job_id: int):
    require_api_role(request, Role.VIEWER)
    return selectors.job_for(job_id=job_id, actor=request.auth)


@router.post(
    "/{job_id}/cancel", response=JobOut, summary="Cancel a waiting job, or ask a running one to stop (Operator+)"
)
def jobs_cancel(request, job_id: int):
    require_api_role(request, Role.OPERATOR)
    selectors.job_for(job_id=job_id, actor=request.auth)
    return services.job_cancel(job_id=job_id, actor=request.auth, request=request)


@router.post("/{job_id}/retry", response=JobOut, summary="Run a failed or cancelled job again (Operator+)")
def jobs_retry(request, job_id: int):
    require_api_role(request, Role.OPERATOR)
    selectors.job_for(job_id=job_id, actor=request.auth)
    return services.job_retry(job_id=job_id, actor=request.auth, request=request)
