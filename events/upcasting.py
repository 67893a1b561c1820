"""Upcasters: old `event_version`s of an event type are turned into the current shape on read.

The log is immutable, so a schema change of event_data never rewrites rows;
instead register `@upcaster("ledger.deposited", from_version=1)` returning the
version-2 data. Chains apply in order (1→2→3). New events are written at the
current version (the highest `from_version + 1` registered, or 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(event_type: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def decorator(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(event_type, from_version)] = fn
        return fn

    return decorator


def unregister(event_type: str, *, from_version: int) -> None:
    _UPCASTERS.pop((event_type, from_version), None)


def current_version(event_type: str) -> int:
    versions = [v for (name, v) in _UPCASTERS if name == event_type]
    return max(versions) + 1 if versions else 1


def upcast(event_type: str, version: int, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    while (fn := _UPCASTERS.get((event_type, version))) is not None:
        data = fn(dict(data))
        version += 1
    return version, data
