"""Operator event log viewer (Viewer+): log list with keyset pages and a live tail, event detail with
its causation/correlation chain, aggregate timeline with state at T and a diff, projection rebuilds."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.errors import InvalidInput, NotFound
from core.http import OperatorRequest
from core.permissions import Role, reader_required, role_required
from events import crypto, projections, selectors, services
from events.filters import filters_from, instant, log_from
from events.logs import TenantRef, tenant_choices, tenant_names, tenant_ref
from events.models import ProjectionRebuild
from events.store import EventStore, EventStoreError


def store_from_request(request: OperatorRequest) -> tuple[EventStore, TenantRef | None]:
    log = log_from(request.GET)
    return log.store, log.tenant


def _detail_log(request: OperatorRequest) -> tuple[EventStore, TenantRef | None]:
    """On detail pages an unknown log is a 404, not a form error."""
    try:
        return store_from_request(request)
    except InvalidInput as exc:
        raise NotFound(str(exc)) from None


@reader_required
def event_list(request: OperatorRequest) -> HttpResponse:
    error, page, store, tenant, f = None, None, None, None, selectors.EventFilters()
    try:
        store, tenant = store_from_request(request)
        f = filters_from(request.GET)
        before = request.GET.get("before")
        page = selectors.event_page(store=store, filters=f, before=int(before) if before and before.isdigit() else None)
    except InvalidInput as exc:
        error = str(exc)
    params = request.GET.copy()
    params.pop("before", None)
    events = page.events if page else []
    context = {
        "page": page,
        "filters": f,
        "error": error,
        "log_tenant": tenant,
        # A tenant's log: an exact count of its own events (the table's estimate would count its pool's).
        "total": (selectors.exact_total(store) if tenant else selectors.estimated_total(store)) if store else 0,
        "choices": selectors.type_choices(store) if store is not None else {},
        "tenant_choices": tenant_choices(),
        "tenant_names": {str(k): v for k, v in tenant_names({e.tenant_id for e in events}).items()},
        "querystring": params.urlencode(),
        "params": request.GET,
    }
    template = (
        "events/list.html#results" if request.htmx and request.htmx.target == "event-results" else "events/list.html"
    )
    return render(request, template, context)


@reader_required
def event_tail(request: OperatorRequest) -> HttpResponse:
    """htmx live tail: rows committed after the durable feed cursor (tx_id, event_id) in ?after=tx:id."""
    try:
        store, tenant = store_from_request(request)
        f = filters_from(request.GET)
        tx, _, eid = request.GET.get("after", "0:0").partition(":")
        after = (int(tx), int(eid or 0))
    except (InvalidInput, ValueError):
        return HttpResponse(status=204)
    events, cursor = selectors.event_tail(store=store, filters=f, after=after)
    params = request.GET.copy()
    params["after"] = f"{cursor[0]}:{cursor[1]}"
    names = {str(k): v for k, v in tenant_names({e.tenant_id for e in events}).items()}
    return render(
        request,
        "events/list.html#tail",
        {
            "new_events": events,
            "tail_query": params.urlencode(),
            "log_tenant": tenant,
            "params": request.GET,
            "tenant_names": names,
        },
    )


def _event_or_404(store: EventStore, event_id: int) -> Any:
    event = selectors.event_get(store=store, event_id=event_id)
    if event is None:
        raise NotFound("No such event in this log.")
    return event


@reader_required
def event_detail(request: OperatorRequest, event_id: int) -> HttpResponse:
    store, tenant = _detail_log(request)
    event = _event_or_404(store, event_id)
    with store.session() as alias:
        shown_data = crypto.decrypt_tree(event.event_data, store, alias=alias)
    chain = selectors.causation_chain(store=store, event=event)
    return render(
        request,
        "events/detail.html",
        {
            "event": event,
            "data_json": json.dumps(shown_data, indent=2, sort_keys=True, default=str),
            "metadata_json": json.dumps(event.event_metadata, indent=2, sort_keys=True, default=str),
            "chain": chain,
            "log_tenant": tenant,
            "log_param": tenant.slug if tenant else "",
        },
    )


@reader_required
def event_by_uuid(request: OperatorRequest, event_uuid: uuid.UUID) -> HttpResponse:
    store, tenant = _detail_log(request)
    event = selectors.event_by_uuid(store=store, event_uuid=event_uuid)
    if event is None:
        raise NotFound("No event with this id in this log.")
    url = reverse("events:detail", args=[event.event_id])
    return redirect(f"{url}?log={tenant.slug}" if tenant else url)


@reader_required
def aggregate_detail(request: OperatorRequest, aggregate_type: str, aggregate_id: str) -> HttpResponse:
    """Timeline, state at T (slider over the stream's instants, or a picker), diff between two instants, chain check."""
    error = None
    store, tenant = _detail_log(request)
    timeline = store.stream(aggregate_type, aggregate_id)
    if not timeline:
        raise NotFound("This aggregate has no events in this log.")
    at = t1 = t2 = None
    try:
        at = instant(request.GET.get("at", ""), "State at")
        t1 = instant(request.GET.get("from", ""), "Diff from")
        t2 = instant(request.GET.get("to", ""), "Diff to")
    except InvalidInput as exc:
        error = str(exc)
    if "v" in request.GET and request.GET["v"].isdigit():  # the slider: a version number -> its instant
        index = min(max(int(request.GET["v"]), 1), len(timeline)) - 1
        at = timeline[index].occurred_at
    state = store.state_at(aggregate_type, aggregate_id, at)
    diff = None
    if t1 and t2:
        diff = selectors.state_diff(store=store, aggregate_type=aggregate_type, aggregate_id=aggregate_id, t1=t1, t2=t2)
    report = store.verify_chain(aggregate_type, aggregate_id)
    context = {
        "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id,
        "timeline": timeline,
        "state": state,
        "state_json": json.dumps(state.state, indent=2, sort_keys=True, default=str),
        "at": at,
        "diff": diff,
        "t1": t1 or timeline[0].occurred_at,
        "t2": t2 or timeline[-1].occurred_at,
        "report": report,
        "error": error,
        "log_tenant": tenant,
        "log_param": tenant.slug if tenant else "",
    }
    template = (
        "events/aggregate.html#state"
        if request.htmx and request.htmx.target == "state-panel"
        else "events/aggregate.html"
    )
    return render(request, template, context)


@reader_required
def chain_verify(request: OperatorRequest) -> HttpResponse:
    store, tenant = _detail_log(request)
    report = store.verify_chain()
    return render(request, "events/verify.html", {"report": report, "log_tenant": tenant})


@reader_required
def projection_list(request: OperatorRequest) -> HttpResponse:
    rebuilds = list(ProjectionRebuild.objects.select_related("job")[:20])
    running = any(r.status in (ProjectionRebuild.Status.PENDING, ProjectionRebuild.Status.RUNNING) for r in rebuilds)
    template = "events/projections.html#rebuilds" if request.htmx else "events/projections.html"
    return render(request, template, {"names": projections.names(), "rebuilds": rebuilds, "running": running})


@require_POST
@role_required(Role.OPERATOR)
def projection_rebuild(request: OperatorRequest) -> HttpResponse:
    name = request.POST.get("projection", "")
    try:
        tenant = tenant_ref(request.POST["tenant"]).pk if request.POST.get("tenant") else None
        services.projection_rebuild_start(projection=name, tenant=tenant, actor=request.user, request=request)
        messages.success(request, f"Rebuild of {name} queued.")
    except (LookupError, InvalidInput, EventStoreError) as exc:
        messages.error(request, str(exc))
    return redirect("events:projections")
