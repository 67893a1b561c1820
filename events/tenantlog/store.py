"""The EventStore bound to one tenant's placement."""

from __future__ import annotations

from typing import Any

from events.store import EventStore
from events.tenantlog.models import TenantCheckpoint, TenantEvent, TenantSnapshot, TenantSubjectKey
from tenants.context import _load, tenant_context


def store_for(tenant: Any) -> EventStore:
    """The tenant's own log (Tenant instance or id). Every call runs inside the tenant's context."""
    tenant = _load(tenant)
    return EventStore(
        event_model=TenantEvent,
        snapshot_model=TenantSnapshot,
        checkpoint_model=TenantCheckpoint,
        key_model=TenantSubjectKey,
        tenant_id=tenant.pk,
        log_key=str(tenant.pk),
        context=lambda: tenant_context(tenant),
    )
