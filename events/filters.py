"""Reading the viewer's filters and log choice from a query string (shared by the screens and the API)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from core.errors import InvalidInput
from core.instants import parse_instant
from events import selectors
from events.logs import EventLog, log_for, tenant_ref


class BadFilter(InvalidInput):
    """A filter value the viewer cannot use (a bad query parameter: 400); the message says which and why."""

    status = 400


def _clean(value: str, label: str) -> str:
    value = (value or "").strip()
    if "\x00" in value:
        raise BadFilter(f"{label} cannot contain a NUL character.")
    return value[:200]


def log_from(params: Any) -> EventLog:
    """`?log=<tenant slug or uuid>` reads that tenant's own log inside its placement; default: the control plane's."""
    return log_for(_clean(params.get("log", ""), "The log"))


def instant(value: str, label: str) -> dt.datetime | None:
    value = _clean(value, label)
    if not value:
        return None
    moment = parse_instant(value)
    if moment is None:
        raise BadFilter(f"{label} must be an ISO 8601 date or date-time.")
    return moment


def filters_from(params: Any) -> selectors.EventFilters:
    f = selectors.EventFilters(
        aggregate_type=_clean(params.get("aggregate_type", ""), "Aggregate type"),
        aggregate_id=_clean(params.get("aggregate_id", ""), "Aggregate id"),
        event_type=_clean(params.get("event_type", ""), "Event type"),
        since=instant(params.get("since", ""), "From"),
        until=instant(params.get("until", ""), "To"),
    )
    if tenant := _clean(params.get("tenant", ""), "Tenant"):
        f.tenant_id = tenant_ref(tenant).pk
    if correlation := _clean(params.get("correlation", ""), "Correlation id"):
        try:
            f.correlation_id = uuid.UUID(correlation)
        except ValueError:
            raise BadFilter("Correlation id must be a UUID.") from None
    if meta := _clean(params.get("meta", ""), "Metadata filter"):
        key, sep, value = meta.partition("=")
        if not sep or not key.strip():
            raise BadFilter("Metadata filter must look like key=value.")
        f.metadata = {key.strip(): value.strip()}
    return f
