"""Saga API, mounted at /api/sagas/: list, detail and operator actions.

Same roles as the monitor: reads Viewer+, retry/cancel Operator+, compensate Admin.
Every action is audited by its service. Provisioning is POST /api/tenants/ (tenants/api.py).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from ninja import Field, Query, Router, Schema

from core.api import require_api_role
from core.errors import NotFound
from core.permissions import Role
from sagas import selectors, services

router = Router(tags=["sagas"])


class StepOut(Schema):
    index: int
    name: str
    state: str
    attempts: int
    max_attempts: int
    compensate_attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    compensated_at: datetime | None
    error: str
    compensation_error: str


class SagaOut(Schema):
    id: UUID
    saga_type: str
    state: str
    tenant_id: UUID | None
    tenant_label: str
    error: str
    requested_by: str
    created_at: datetime
    finished_at: datetime | None


class SagaDetailOut(SagaOut):
    steps: list[StepOut]


class SagaFilters(Schema):
    type: str = ""
    state: str = ""
    tenant: str = ""
    age: str = ""
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10**9)


def _out(saga, steps: bool = False) -> dict:
    data = {
        "id": saga.id,
        "saga_type": saga.saga_type,
        "state": saga.state,
        "tenant_id": saga.tenant_id,
        "tenant_label": saga.tenant_label,
        "error": saga.error,
        "requested_by": saga.requested_by_label,
        "created_at": saga.created_at,
        "finished_at": saga.finished_at,
    }
    if steps:
        data["steps"] = list(saga.steps.select_related("job", "compensation_job"))
    return data


@router.get("/", response=list[SagaOut], summary="Sagas, newest first (Viewer+)")
def saga_list(request, filters: Query[SagaFilters]):
    require_api_role(request, Role.VIEWER)
    qs = selectors.saga_list(saga_type=filters.type, state=filters.state, tenant=filters.tenant, age=filters.age)
    limit = max(1, min(filters.limit, 200))
    return [_out(s) for s in qs[filters.offset : filters.offset + limit]]


@router.get("/counts", response=dict[str, int], summary="How many sagas are in each state (Viewer+)")
def saga_counts(request):
    require_api_role(request, Role.VIEWER)
    return selectors.saga_counts_by_state()


@router.get("/{saga_id}", response=SagaDetailOut, summary="One saga with its steps (Viewer+)")
def saga_detail(request, saga_id: str):
    require_api_role(request, Role.VIEWER)
    return _out(selectors.saga_get(saga_id=saga_id, actor=request.auth), steps=True)


_ACTIONS = {
    "retry": (Role.OPERATOR, services.saga_retry),
    "cancel": (Role.OPERATOR, services.saga_cancel),
    "compensate": (Role.ADMIN, services.saga_compensate),
}


@router.post("/{saga_id}/{action}", response=SagaDetailOut, summary="retry / cancel (Operator+), compensate (Admin)")
def saga_action(request, saga_id: str, action: str):
    if action not in _ACTIONS:
        raise NotFound("Unknown action; use retry, cancel or compensate.")
    role, service = _ACTIONS[action]
    require_api_role(request, role)
    saga = selectors.saga_get(saga_id=saga_id, actor=request.auth)
    service(saga_id=saga.id, actor=request.auth, request=request)  # a Conflict is a 409 (core.api)
    return _out(selectors.saga_get(saga_id=saga.id, actor=request.auth), steps=True)
