"""The write fence of a move, and clearing every process's host cache.

Host lookups are cached per process (tenants.selectors), so a process may still believe a frozen
tenant is `active` for a moment. The freeze must not depend on that: every write request on a
tenant host takes a *shared* advisory lock on the tenant in the control-plane database and reads the
tenant's status and placement fresh under it, in a transaction that stays open until the request's
data-plane transaction has committed (tenants.middleware). The saga's freeze and switch take the
same lock *exclusively* in the transaction that changes the status: the freeze waits for writes in
flight to finish, and every write that starts later sees `moving` (409) — or, after the switch, the
new placement. Reads take no lock.

`hosts_changed()` then tells every process to forget its cached hosts at once (pg_notify on
`tenant_hosts`, delivered at commit; tenants.hostcache listens in each web process), so reads move
to the new placement without waiting out the cache's TTL.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, transaction

from tenants import selectors
from tenants.hostcache import CHANNEL

FENCE_CLASS = 0x7E4A4D  # advisory lock class of tenant write fences (two-key form: class, hashtext(uuid))


def write_fence(tenant_id: Any) -> tuple[str, int | None] | None:
    """In the caller's transaction on `default`: hold the tenant's fence shared and return its fresh
    (status, placement_id), or None if the tenant is gone."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT t.status, t.placement_id FROM (SELECT pg_advisory_xact_lock_shared(%s, hashtext(%s))) AS l, "
            "tenants_tenant t WHERE t.id = %s",
            [FENCE_CLASS, str(tenant_id), str(tenant_id)],
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def fence_exclusive(tenant_id: Any) -> None:
    """In the caller's transaction: wait for every write in flight on the tenant, keep new ones out."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [FENCE_CLASS, str(tenant_id)])


def hosts_changed() -> None:
    """In the caller's transaction: every process drops its cached hosts when it commits."""
    selectors.host_cache_clear()
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])
    transaction.on_commit(selectors.host_cache_clear)
