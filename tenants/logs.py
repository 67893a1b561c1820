"""A tenant's own event log (events.tenantlog), bound to the tenant's placement from outside.

- `tenant_log_store(tenant)`: the EventStore of the tenant's log; every call enters the
  tenant's context, so RLS and search_path apply.
- `tenant_log_purge(tenant)`: deleting a tenant removes its log too — the one sanctioned way
  past the immutability triggers. The app role cannot UPDATE/DELETE/TRUNCATE events anywhere;
  here the placement's owner role names the tenant in a transaction-local setting that the row
  trigger honours for the owner only, and deletes this tenant's rows (RLS still scopes the
  owner, FORCE'd). No DDL, no table lock. Erasing one person's data is crypto-shredding
  instead (events.crypto), which leaves the log intact.
- `resolve_log(ref)`: what the event viewer, its API and `aggregate_state --tenant` use
  (registered with events.logs by tenants.apps).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.db import connections

from events.logs import LogNotFound, TenantRef
from events.store import EventStore
from events.tenantlog.store import tenant_log_store as _bound_store
from tenants.context import applied, load_tenant, tenant_context
from tenants.databases import register_placement
from tenants.models import Tenant


def tenant_log_store(tenant: Any) -> EventStore:
    """The tenant's own log (Tenant instance or id); every call runs inside the tenant's context."""
    tenant = load_tenant(tenant)
    return _bound_store(
        tenant_id=tenant.pk,
        alias=tenant.placement.database_alias if tenant.placement else "default",
        context=lambda: tenant_context(tenant),
    )


def tenant_log_purge(tenant: Any) -> int:
    """Delete every event of `tenant` in its placement; returns how many rows went."""
    tenant = load_tenant(tenant)
    placement = tenant.placement
    if placement is None:
        return 0
    register_placement(placement)
    with applied(placement.owner_alias, tenant_id=tenant.pk, schema_name=placement.schema_name) as alias:
        with connections[alias].cursor() as cursor:
            # No DDL (no table lock): the trigger lets the owner delete rows of the tenant named here.
            cursor.execute("SELECT set_config('events.purge_tenant_id', %s, true)", [str(tenant.pk)])
            cursor.execute("DELETE FROM tenantlog_event WHERE tenant_id = %s", [tenant.pk])
            deleted = cursor.rowcount
            cursor.execute("SELECT set_config('events.purge_tenant_id', '', true)")
    return deleted


def resolve_log(ref: str) -> tuple[TenantRef, Callable[[], EventStore] | None]:
    """A tenant named by uuid or slug → its reference and its log (None when it has no placement yet)."""
    if "\x00" in ref:
        raise LogNotFound("A log name cannot contain a NUL character.")
    qs = Tenant.objects.select_related("placement")
    try:
        found = qs.filter(pk=uuid.UUID(ref)).first()
    except ValueError:
        found = qs.filter(slug=ref[:40]).first()
    if found is None:
        raise LogNotFound(f"There is no tenant {ref[:60]!r}.")
    factory = (lambda: tenant_log_store(found)) if found.placement_id else None
    return TenantRef(pk=found.pk, slug=found.slug, name=found.name), factory


def tenant_names(ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Names of these tenants (the event viewer shows them instead of uuids)."""
    return {
        pk: f"{name} ({slug})" for pk, name, slug in Tenant.objects.filter(pk__in=ids).values_list("pk", "name", "slug")
    }


def tenant_choices(limit: int = 500) -> list[tuple[str, str]]:
    """(slug, name) of tenants with a placement (so with a log), for the event viewer's pickers."""
    rows = Tenant.objects.filter(placement__isnull=False).order_by("name").values_list("slug", "name")[:limit]
    return list(rows)
