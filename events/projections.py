"""Async projections: consumers that follow a log through its gap-safe feed with a durable checkpoint.

A projection is a name, a function building the store it reads, a handler
`handle(alias, events)` that writes its rows in the consumer's transaction,
and a `reset(alias, store)` that empties them for a rebuild. `catch_up` runs
batches until the feed is drained; notifications (if any) are only a hint to
run it sooner, never the source of truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import F
from django.db.models.functions import Greatest

from events.models import EventTypeStat
from events.store import EventStore


@dataclass(frozen=True)
class Projection:
    name: str
    store: Callable[[Any], EventStore]  # tenant (or None) -> store
    handle: Callable[[str, list[Any]], None]
    reset: Callable[[str, EventStore], None]
    tenant_scoped: bool = False


_PROJECTIONS: dict[str, Projection] = {}


def register(projection: Projection) -> Projection:
    _PROJECTIONS[projection.name] = projection
    return projection


def get(name: str) -> Projection:
    try:
        return _PROJECTIONS[name]
    except KeyError:
        raise LookupError(f"There is no projection named {name!r}.") from None


def names() -> list[str]:
    return sorted(_PROJECTIONS)


def checkpoint_name(projection: Projection) -> str:
    return f"projection:{projection.name}"


def catch_up(name: str, tenant: Any = None, *, batch_size: int = 500, max_batches: int | None = None) -> int:
    projection = get(name)
    store = projection.store(tenant)
    total = batches = 0
    while True:
        n = store.consume(checkpoint_name(projection), projection.handle, batch_size=batch_size)
        total += n
        batches += 1
        if n < batch_size or (max_batches is not None and batches >= max_batches):
            return total


# --- the control plane's event-type statistics ------------------------------------------
def _stats_handle(alias: str, events: list[Any]) -> None:
    grouped: dict[tuple[str, str], list[Any]] = {}
    for event in events:
        grouped.setdefault((event.aggregate_type, event.event_type), []).append(event)
    for (aggregate_type, event_type), items in grouped.items():
        last = max(items, key=lambda e: e.event_id)
        stat, created = EventTypeStat.objects.using(alias).get_or_create(
            aggregate_type=aggregate_type,
            event_type=event_type,
            defaults={"count": len(items), "last_event_id": last.event_id, "last_occurred_at": last.occurred_at},
        )
        if not created:
            EventTypeStat.objects.using(alias).filter(pk=stat.pk).update(
                count=F("count") + len(items),
                last_event_id=Greatest(F("last_event_id"), last.event_id),
                last_occurred_at=Greatest(F("last_occurred_at"), last.occurred_at),
            )


def _stats_reset(alias: str, store: EventStore) -> None:
    EventTypeStat.objects.using(alias).all().delete()


register(
    Projection(
        name="control.event_type_stats",
        store=lambda tenant: EventStore.control(),
        handle=_stats_handle,
        reset=_stats_reset,
    )
)
