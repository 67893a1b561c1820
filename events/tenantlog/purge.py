"""Deleting a tenant removes its event log too: the one sanctioned way past the immutability triggers.

The app role cannot UPDATE/DELETE/TRUNCATE events anywhere. When a tenant is
deleted, its placement's owner role names the tenant in a transaction-local
setting that the row trigger honours for the owner only, and deletes this
tenant's rows (RLS still scopes the owner, FORCE'd). No DDL, no table lock. Erasing one person's data
is crypto-shredding instead (events.crypto.subject_erase), which leaves the
log intact.
"""

from __future__ import annotations

from typing import Any

from django.db import connections

from tenants.context import _load, applied


def tenant_log_purge(tenant: Any) -> int:
    """Delete every event of `tenant` in its placement; returns how many rows went."""
    from tenants.databases import register_placement

    tenant = _load(tenant)
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
