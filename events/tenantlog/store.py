"""The EventStore of a tenant's own log, as the data plane sees it from inside the tenant's context.

The control plane binds a tenant's log to its placement from outside (tenants/logs.py);
code that already runs inside a tenant_context (the workspace ledger) uses
`current_tenant_store()` and never needs to know which tenant or placement it is in.
"""

from __future__ import annotations

from typing import Any

from core.tenancy import active_tenant
from events.store import EventStore
from events.tenantlog.models import TenantCheckpoint, TenantEvent, TenantSnapshot, TenantSubjectKey


def tenant_log_store(*, tenant_id: Any, alias: str, context: Any = None) -> EventStore:
    """A tenant's log on `alias`; `context` (a callable returning a context manager yielding the alias)
    is entered around every call when the caller is not already inside the tenant's context."""
    return EventStore(
        alias=alias,
        event_model=TenantEvent,
        snapshot_model=TenantSnapshot,
        checkpoint_model=TenantCheckpoint,
        key_model=TenantSubjectKey,
        tenant_id=tenant_id,
        log_key=str(tenant_id),
        context=context,
    )


def current_tenant_store() -> EventStore:
    """The log of the tenant whose context is open (its GUC and search_path already apply)."""
    active = active_tenant()
    if active is None:
        raise RuntimeError("The tenant's event log needs an open tenant_context.")
    return tenant_log_store(tenant_id=active.tenant_id, alias=active.alias)
