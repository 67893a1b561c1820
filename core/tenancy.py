"""The current tenant of this thread/task (a ContextVar), read by the router, model defaults and the event store.

Only `tenants.context.tenant_context` enters a tenant (it also applies the database settings);
everything else reads. Kept free of Django model imports so migrations can reference
`current_tenant_id` as a field default, and so the data plane (workspace, tenant event logs)
can know its tenant without importing the control plane.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class ActiveTenant:
    tenant_id: uuid.UUID
    alias: str
    schema_name: str
    # A request on the tenant's host: every query of every model goes to `alias` (the data-plane
    # role), so nothing in it can reach a control-plane table (core.routers.TenantRouter).
    data_plane: bool = False
    # In such a request: the alias reaching the control-plane database as the data-plane role, for
    # the one table there it may use (the workspace-lockout cache) — also for dedicated tenants.
    control_alias: str | None = None
    # The tenant's plan: its quotas (core.quotas) are enforced in the data plane, which cannot read the control plane.
    plan: str = ""
    quotas_exceeded: tuple[str, ...] = ()


_active: ContextVar[ActiveTenant | None] = ContextVar("active_tenant", default=None)
# Set while migrating one placement, so the router only lets TENANT_APPS migrate there.
_migrating_placement: ContextVar[bool] = ContextVar("migrating_placement", default=False)


def active_tenant() -> ActiveTenant | None:
    return _active.get()


def current_tenant_id() -> uuid.UUID | None:
    """Default for every data-plane `tenant_id`: the tenant of the open tenant_context (None outside one)."""
    active = _active.get()
    return active.tenant_id if active else None


def current_alias() -> str | None:
    active = _active.get()
    return active.alias if active else None


def data_plane_request() -> bool:
    active = _active.get()
    return bool(active and active.data_plane)


def migrating_placement() -> bool:
    return _migrating_placement.get()


@contextmanager
def activated(active: ActiveTenant | None) -> Iterator[None]:
    """Make `active` the current tenant (None: no tenant) until the block ends."""
    token = _active.set(active)
    try:
        yield
    finally:
        _active.reset(token)


@contextmanager
def placement_migration() -> Iterator[None]:
    """Mark the block as migrating one placement (TENANT_APPS only, see core.routers)."""
    token = _migrating_placement.set(True)
    try:
        yield
    finally:
        _migrating_placement.reset(token)
