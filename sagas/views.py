"""Saga monitor: list with filters and counts, detail with the step timeline, operator actions.

Permissions (checked here, server-side; templates only hide buttons):
- list and detail: Viewer+
- retry, cancel: Operator+ (they only resume or stop-and-undo work already requested)
- compensate (abandon retries and undo now): Admin
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import Conflict, NotFound
from core.http import OperatorRequest
from core.permissions import Role, check_role, role_required
from sagas import selectors, services
from sagas.models import SagaState

ACTIONS = {
    "retry": (Role.OPERATOR, services.saga_retry, "Retry sent."),
    "cancel": (Role.OPERATOR, services.saga_cancel, "Cancellation requested: the saga stops and undoes its steps."),
    "compensate": (Role.ADMIN, services.saga_compensate, "Compensation started."),
}


@role_required(Role.VIEWER)
def saga_list(request: OperatorRequest) -> HttpResponse:
    filters = {key: request.GET.get(key, "").strip() for key in ("type", "state", "tenant", "age")}
    qs = selectors.saga_list(
        saga_type=filters["type"], state=filters["state"], tenant=filters["tenant"], age=filters["age"]
    )
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    context = {
        "page": page,
        "filters": filters,
        "query": query,
        "counts": selectors.saga_counts_by_state(),
        "states": SagaState.choices,
        "types": selectors.saga_types_in_use(),
        "ages": [(k, v[0]) for k, v in selectors.AGE_CHOICES.items()],
    }
    template = (
        "sagas/list.html#saga-table" if request.htmx and request.htmx.target == "saga-table" else "sagas/list.html"
    )
    return render(request, template, context)


@role_required(Role.VIEWER)
def saga_detail(request: OperatorRequest, saga_id: str) -> HttpResponse:
    saga = selectors.saga_get(saga_id=saga_id, actor=request.user)
    context = {
        "saga": saga,
        "steps": list(saga.steps.select_related("job", "compensation_job")),
        "progress": selectors.saga_progress(saga),
        "events": selectors.saga_events(saga),
        "input": services.public_input(saga.input),
    }
    template = "sagas/detail.html#saga-live" if request.htmx else "sagas/detail.html"
    return render(request, template, context)


@require_POST
@role_required(Role.OPERATOR)
def saga_action(request: OperatorRequest, saga_id: str, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise NotFound("Unknown action; use retry, cancel or compensate.")
    role, service, done = ACTIONS[action]
    check_role(request.user, role)
    saga = selectors.saga_get(saga_id=saga_id, actor=request.user)
    try:
        service(saga_id=saga.id, actor=request.user, request=request)
    except Conflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("sagas:detail", saga_id=saga.id)
