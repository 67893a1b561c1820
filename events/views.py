"""Operator event log viewer (Viewer+): log list with keyset pages and a live tail, event detail with
its causation/correlation chain, aggregate timeline with state at T and a diff, projection rebuilds."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.instants import parse_instant
from core.permissions import Role, role_required
from events import projections, selectors, services
from events.models import ProjectionRebuild
from events.store import EventStore, EventStoreError


class BadFilter(ValueError):
    pass


def _tenant_by_ref(ref: str) -> Any:
    from tenants.models import Tenant

    qs = Tenant.objects.select_related("placement")
    try:
        found = qs.filter(pk=uuid.UUID(ref)).first()
    except ValueError:
        found = qs.filter(slug=ref).first()
    if found is None:
        raise BadFilter(f"There is no tenant {ref!r}.")
    return found


def store_from_request(request: HttpRequest) -> tuple[EventStore, Any]:
    """`?log=<tenant slug>` reads that tenant's own log inside its placement; default: the control plane's."""
    ref = (request.GET.get("log") or "").strip()
    if not ref or ref == "control":
        return services.control_store(), None
    tenant = _tenant_by_ref(ref)
    if tenant.placement_id is None:
        raise BadFilter(f"Tenant {tenant.slug} has no placement yet, so no event log.")
    return services.tenant_store(tenant), tenant


def _instant(value: str, label: str) -> dt.datetime | None:
    if not value:
        return None
    moment = parse_instant(value)
    if moment is None:
        raise BadFilter(f"{label} must be an ISO 8601 date or date-time.")
    return moment


def filters_from(params: Any) -> selectors.EventFilters:
    f = selectors.EventFilters(
        aggregate_type=params.get("aggregate_type", "").strip(),
        aggregate_id=params.get("aggregate_id", "").strip(),
        event_type=params.get("event_type", "").strip(),
        since=_instant(params.get("since", "").strip(), "From"),
        until=_instant(params.get("until", "").strip(), "To"),
    )
    if tenant := params.get("tenant", "").strip():
        f.tenant_id = _tenant_by_ref(tenant).pk
    if correlation := params.get("correlation", "").strip():
        try:
            f.correlation_id = uuid.UUID(correlation)
        except ValueError:
            raise BadFilter("Correlation id must be a UUID.")
    if meta := params.get("meta", "").strip():
        key, sep, value = meta.partition("=")
        if not sep or not key.strip():
            raise BadFilter("Metadata filter must look like key=value.")
        f.metadata = {key.strip(): value.strip()}
    return f


@role_required(Role.VIEWER)
def event_list(request: HttpRequest) -> HttpResponse:
    error, page, store, tenant, f = None, None, None, None, selectors.EventFilters()
    try:
        store, tenant = store_from_request(request)
        f = filters_from(request.GET)
        before = request.GET.get("before")
        page = selectors.event_page(store=store, filters=f, before=int(before) if before and before.isdigit() else None)
    except BadFilter as exc:
        error = str(exc)
    params = request.GET.copy()
    params.pop("before", None)
    context = {
        "page": page,
        "filters": f,
        "error": error,
        "log_tenant": tenant,
        "estimated_total": selectors.estimated_total(store) if store is not None else 0,
        "querystring": params.urlencode(),
        "params": request.GET,
    }
    template = (
        "events/list.html#results" if request.htmx and request.htmx.target == "event-results" else "events/list.html"
    )
    return render(request, template, context)


@role_required(Role.VIEWER)
def event_tail(request: HttpRequest) -> HttpResponse:
    """htmx live tail: rows committed after the durable feed cursor (tx_id, event_id) in ?after=tx:id."""
    try:
        store, tenant = store_from_request(request)
        f = filters_from(request.GET)
        tx, _, eid = request.GET.get("after", "0:0").partition(":")
        after = (int(tx), int(eid or 0))
    except (BadFilter, ValueError):
        return HttpResponse(status=204)
    events, cursor = selectors.event_tail(store=store, filters=f, after=after)
    params = request.GET.copy()
    params["after"] = f"{cursor[0]}:{cursor[1]}"
    return render(
        request,
        "events/list.html#tail",
        {"new_events": events, "tail_query": params.urlencode(), "log_tenant": tenant, "params": request.GET},
    )


def _event_or_404(store: EventStore, event_id: int) -> Any:
    event = selectors.event_get(store=store, event_id=event_id)
    if event is None:
        raise Http404("No such event in this log.")
    return event


@role_required(Role.VIEWER)
def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    try:
        store, tenant = store_from_request(request)
    except BadFilter as exc:
        raise Http404(str(exc))
    event = _event_or_404(store, event_id)
    from events import crypto

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


@role_required(Role.VIEWER)
def event_by_uuid(request: HttpRequest, event_uuid: uuid.UUID) -> HttpResponse:
    store, tenant = store_from_request(request)
    event = selectors.event_by_uuid(store=store, event_uuid=event_uuid)
    if event is None:
        raise Http404("No event with this id in this log.")
    url = reverse("events:detail", args=[event.event_id])
    return redirect(f"{url}?log={tenant.slug}" if tenant else url)


@role_required(Role.VIEWER)
def aggregate_detail(request: HttpRequest, aggregate_type: str, aggregate_id: str) -> HttpResponse:
    """Timeline, state at T (slider over the stream's instants, or a picker), diff between two instants, chain check."""
    error = None
    try:
        store, tenant = store_from_request(request)
    except BadFilter as exc:
        raise Http404(str(exc))
    timeline = store.stream(aggregate_type, aggregate_id)
    if not timeline:
        raise Http404("This aggregate has no events in this log.")
    at = t1 = t2 = None
    try:
        at = _instant(request.GET.get("at", ""), "State at")
        t1 = _instant(request.GET.get("from", ""), "Diff from")
        t2 = _instant(request.GET.get("to", ""), "Diff to")
    except BadFilter as exc:
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


@role_required(Role.VIEWER)
def chain_verify(request: HttpRequest) -> HttpResponse:
    try:
        store, tenant = store_from_request(request)
    except BadFilter as exc:
        raise Http404(str(exc))
    report = store.verify_chain()
    return render(request, "events/verify.html", {"report": report, "log_tenant": tenant})


@role_required(Role.VIEWER)
def projection_list(request: HttpRequest) -> HttpResponse:
    rebuilds = list(ProjectionRebuild.objects.all()[:20])
    running = any(r.status in (ProjectionRebuild.Status.PENDING, ProjectionRebuild.Status.RUNNING) for r in rebuilds)
    template = "events/projections.html#rebuilds" if request.htmx else "events/projections.html"
    return render(request, template, {"names": projections.names(), "rebuilds": rebuilds, "running": running})


@require_POST
@role_required(Role.OPERATOR)
def projection_rebuild(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("projection", "")
    try:
        tenant = _tenant_by_ref(request.POST["tenant"]) if request.POST.get("tenant") else None
        services.projection_rebuild_start(projection=name, tenant=tenant, actor=request.user, request=request)
        messages.success(request, f"Rebuild of {name} queued.")
    except (LookupError, BadFilter, EventStoreError) as exc:
        messages.error(request, str(exc))
    return redirect("events:projections")
