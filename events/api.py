"""JSON API of the events app, mounted at /api/events/ (auth: operator token or session; Viewer+).

- GET /api/events/?log=&tenant=&aggregate_type=&aggregate_id=&event_type=&since=&until=&correlation=&meta=&before=&limit=
  keyset pages, newest first; `next_before` is the cursor of the next (older) page.
- GET /api/events/{event_id}?log=
- GET /api/events/state/{aggregate_type}/{aggregate_id}?log=&at=   state at an instant (latest when absent)
- GET /api/events/verify?log=&aggregate_type=&aggregate_id=        hash-chain verification

No `from __future__ import annotations`: ninja reads the annotations at runtime.
"""

import uuid
from datetime import datetime
from typing import Any

from ninja import Router, Schema

from core.api import require_api_reader
from core.errors import NotFound
from events import crypto, selectors
from events.filters import filters_from, instant, log_from

router = Router(tags=["events"])


class EventOut(Schema):
    event_id: int
    event_uuid: uuid.UUID
    aggregate_type: str
    aggregate_id: str
    version: int
    event_type: str
    event_version: int
    event_data: dict
    event_metadata: dict
    occurred_at: datetime
    causation_id: uuid.UUID | None
    correlation_id: uuid.UUID | None
    tenant_id: uuid.UUID | None
    hash: str
    prev_hash: str | None


class EventPageOut(Schema):
    events: list[EventOut]
    next_before: int | None


class StateOut(Schema):
    aggregate_type: str
    aggregate_id: str
    at: datetime | None
    version: int
    event_id: int | None
    occurred_at: datetime | None
    state: dict


class ChainOut(Schema):
    ok: bool
    checked: int
    broken: list[dict]


def _out(event: Any, data: dict | None = None) -> dict:
    return {
        "event_id": event.event_id,
        "event_uuid": event.event_uuid,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "version": event.version,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "event_data": event.event_data if data is None else data,
        "event_metadata": event.event_metadata,
        "occurred_at": event.occurred_at,
        "causation_id": event.causation_id,
        "correlation_id": event.correlation_id,
        "tenant_id": getattr(event, "tenant_id", None),
        "hash": event.hash_hex,
        "prev_hash": event.prev_hash_hex or None,
    }


def _store(request):
    return log_from(request.GET).store  # an unknown log is a 422 with one sentence (core.api)


@router.get("/", response=EventPageOut)
def events_list(
    request,
    before: int | None = None,
    limit: int = 50,
    log: str = "",
    tenant: str = "",
    aggregate_type: str = "",
    aggregate_id: str = "",
    event_type: str = "",
    since: str = "",
    until: str = "",
    correlation: str = "",
    meta: str = "",
):
    """Newest first. Filters as in the viewer (declared here for the OpenAPI document; read from the query)."""
    require_api_reader(request)
    store = _store(request)
    filters = filters_from(request.GET)
    page = selectors.event_page(store=store, filters=filters, before=before, limit=max(1, min(limit, 500)))
    return {"events": [_out(e) for e in page.events], "next_before": page.next_before}


@router.get("/verify", response=ChainOut)
def events_verify(request, aggregate_type: str = "", aggregate_id: str = "", log: str = ""):
    require_api_reader(request)
    report = _store(request).verify_chain(aggregate_type or None, aggregate_id or None)
    return {"ok": report.ok, "checked": report.checked, "broken": report.broken}


@router.get("/state/{aggregate_type}/{path:aggregate_id}", response=StateOut)
def events_state(request, aggregate_type: str, aggregate_id: str, at: str = "", log: str = ""):
    require_api_reader(request)
    store = _store(request)
    moment = instant(at, "at")
    result = store.state_at(aggregate_type, aggregate_id, moment)
    if result.version == 0 and not store.current_version(aggregate_type, aggregate_id):
        raise NotFound(f"{aggregate_type} {aggregate_id} has no events in this log.")
    return {**result.as_dict(), "at": moment, "occurred_at": result.occurred_at}


@router.get("/{int:event_id}", response=EventOut)
def events_detail(request, event_id: int, log: str = ""):
    require_api_reader(request)
    store = _store(request)
    event = selectors.event_get(store=store, event_id=event_id)
    if event is None:
        raise NotFound("No such event in this log.")
    with store.session() as alias:
        data = crypto.decrypt_tree(event.event_data, store, alias=alias)
    return _out(event, data)
