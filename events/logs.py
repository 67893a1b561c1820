"""Which event log a screen, an API call or a command means: `control` (the default) or a tenant's.

The event store knows nothing about tenants; the tenants app provides a resolver when it is
ready (tenants/logs.py) that turns a tenant's slug or uuid into that tenant's log, bound to its
placement. Keeps the dependency one way: tenants → events.

    log = log_for(request.GET.get("log", ""))    # LogNotFound: one sentence, e.g. "There is no tenant 'x'."
    log.store.stream(...); log.tenant.slug
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import InvalidInput
from events.store import EventStore


class LogNotFound(InvalidInput):
    """No such tenant, or a tenant without a placement (so without a log)."""


@dataclass(frozen=True)
class TenantRef:
    """Enough of a tenant for the viewer: its id, slug and name."""

    pk: uuid.UUID
    slug: str
    name: str


@dataclass(frozen=True)
class EventLog:
    store: EventStore
    tenant: TenantRef | None = None  # None: the control plane's log

    @property
    def param(self) -> str:
        """The `log` query parameter that selects this log again."""
        return self.tenant.slug if self.tenant else ""


Resolver = Callable[[str], tuple[TenantRef, Callable[[], EventStore] | None]]
_resolver: Resolver | None = None


def provide_tenant_resolver(resolver: Resolver) -> None:
    """Called by the tenants app: slug or uuid → (TenantRef, store factory or None when it has no placement)."""
    global _resolver
    _resolver = resolver


NamesResolver = Callable[[set[uuid.UUID]], dict[uuid.UUID, str]]
_names: NamesResolver | None = None


def provide_tenant_names(resolver: NamesResolver) -> None:
    """Called by the tenants app: tenant ids → names, so the viewer shows names instead of uuids."""
    global _names
    _names = resolver


ChoicesResolver = Callable[[], list[tuple[str, str]]]
_choices: ChoicesResolver | None = None


def provide_tenant_choices(resolver: ChoicesResolver) -> None:
    """Called by the tenants app: (slug, name) of tenants that have a log, for the viewer's pickers."""
    global _choices
    _choices = resolver


def tenant_choices() -> list[tuple[str, str]]:
    return _choices() if _choices is not None else []


def tenant_names(ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    ids = {i for i in ids if i}
    return _names(ids) if (_names is not None and ids) else {}


def tenant_ref(ref: str) -> TenantRef:
    """The tenant a slug or uuid names (for the control log's tenant filter)."""
    return _resolve(ref)[0]


def log_for(ref: str) -> EventLog:
    """`""` or `"control"`: the control plane's log; otherwise the log of the tenant named by slug or uuid."""
    ref = (ref or "").strip()
    if not ref or ref == "control":
        return EventLog(store=EventStore.control())
    tenant, factory = _resolve(ref)
    if factory is None:
        raise LogNotFound(f"Tenant {tenant.slug} has no placement yet, so no event log.")
    return EventLog(store=factory(), tenant=tenant)


def _resolve(ref: str) -> tuple[TenantRef, Callable[[], EventStore] | None]:
    if _resolver is None:
        raise LogNotFound("Tenant logs are not available here.")
    return _resolver(ref.strip())
