"""The control-plane event log as seen from below the event store: one function.

The job engine (jobs) sits below the event store (events runs its projection rebuilds as
jobs), yet every job transition must be appended to the control-plane log in the same
transaction. So the engine calls `append` here and the events app provides the writer when
it is ready (events.apps). Without the events app installed, `append` raises: an event is
never dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

Writer = Callable[..., Any]
_writer: Writer | None = None


def provide(writer: Writer) -> None:
    """Called once by the events app with events.services.control_event_append."""
    global _writer
    _writer = writer


def append(
    *,
    aggregate_type: str,
    aggregate_id: str,
    event_type: str,
    data: dict[str, Any],
    correlation_id: Any = None,
    tenant_id: Any = None,
) -> Any:
    """Append one event to the control-plane log inside the caller's transaction."""
    if _writer is None:
        raise ImproperlyConfigured("The control-plane event log is not available: is 'events' in INSTALLED_APPS?")
    return _writer(
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        event_type=event_type,
        data=data,
        correlation_id=correlation_id,
        tenant_id=tenant_id,
        expected_version=None,
    )
