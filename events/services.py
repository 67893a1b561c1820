"""Writes to the control plane's event log (HackSoft style: keyword-only service functions)."""

from __future__ import annotations

import uuid
from typing import Any

from events.store import ANY, EventStore


def control_store() -> EventStore:
    return EventStore.control()


def control_event_append(
    *,
    aggregate_type: str,
    aggregate_id: str,
    event_type: str,
    data: dict,
    metadata: dict | None = None,
    causation_id: Any = None,
    correlation_id: Any = None,
    expected_version: int | None = ANY,
    tenant_id: uuid.UUID | str | None = None,
) -> Any:
    """Append one event to the control-plane log in `public`, inside the caller's transaction.

    `expected_version=None` appends after whatever the stream holds; an int
    is optimistic concurrency (0 = the stream must be new) and raises
    events.store.ConcurrencyError when another writer got there first.
    `causation_id` may be an Event or its event_uuid; `tenant_id` tags the
    event for the viewer's tenant filter (defaults to aggregate_id when the
    aggregate is a tenant).
    """
    store = control_store()
    if tenant_id is None and aggregate_type == "tenant":
        tenant_id = aggregate_id
    try:
        store.tenant_id = uuid.UUID(str(tenant_id)) if tenant_id else None
    except ValueError:
        store.tenant_id = None
    return store.append(
        aggregate_type,
        str(aggregate_id),
        event_type,
        data,
        metadata=metadata,
        causation_id=causation_id,
        correlation_id=correlation_id,
        expected_version=expected_version,
    )
