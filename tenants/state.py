"""The current tenant of this thread/task (a ContextVar), read by the router and model defaults.

Kept free of Django model imports so migrations can reference `current_tenant_id`.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class ActiveTenant:
    tenant_id: uuid.UUID
    alias: str
    schema_name: str


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


def migrating_placement() -> bool:
    return _migrating_placement.get()
