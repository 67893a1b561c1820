"""How an aggregate's state is folded from its events, and when it is snapshotted.

Register a reducer per aggregate type; unregistered types use the generic
reducer (each event's data merged into the state, `null` removes a key), which
suits the control plane's lifecycle events (`{"status": "active"}`, ...).
Reducers see event data as stored: personal data stays encrypted inside the
state and its snapshots, and is decrypted only when presented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_SNAPSHOT_EVERY = 100

Reducer = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class AggregateSpec:
    aggregate_type: str
    apply: Reducer
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY
    reducer_version: int = 1


def merge_reducer(state: dict[str, Any], event: Any) -> dict[str, Any]:
    new = dict(state)
    for key, value in (event.event_data or {}).items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    return new


_REGISTRY: dict[str, AggregateSpec] = {}


def register(
    aggregate_type: str, *, snapshot_every: int = DEFAULT_SNAPSHOT_EVERY, reducer_version: int = 1
) -> Callable[[Reducer], Reducer]:
    """Decorator: `@register("ledger.account")` on `def apply(state, event) -> new_state`."""

    def decorator(apply: Reducer) -> Reducer:
        _REGISTRY[aggregate_type] = AggregateSpec(aggregate_type, apply, snapshot_every, reducer_version)
        return apply

    return decorator


def spec_for(aggregate_type: str) -> AggregateSpec:
    return _REGISTRY.get(aggregate_type) or AggregateSpec(aggregate_type, merge_reducer)


def fold(aggregate_type: str, state: dict[str, Any], events: list[Any]) -> dict[str, Any]:
    apply = spec_for(aggregate_type).apply
    for event in events:
        state = apply(state, event)
    return state
