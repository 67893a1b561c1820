"""Tenant lifecycle in the control-plane event log (aggregate type "tenant").

Every status change of a tenant appends one event in the same transaction as
the change, so `aggregate_state tenant <uuid> --at T` answers what state a
tenant was in at T, and the saga/compliance screens can link to it. Events
carry the new `status` in their data: the log's generic merge reducer folds
them into the tenant's state.
"""

from __future__ import annotations

from typing import Any

from events.services import control_event_append


def tenant_event(tenant_id: Any, event_type: str, **data: Any) -> None:
    """Append one lifecycle event; call inside the transaction that changed the tenant."""
    control_event_append(aggregate_type="tenant", aggregate_id=str(tenant_id), event_type=event_type, data=data)


def registered_data(tenant: Any) -> dict[str, Any]:
    return {
        "status": tenant.status,
        "slug": tenant.slug,
        "name": tenant.name,
        "isolation": tenant.isolation,
        "plan": tenant.plan,
    }
