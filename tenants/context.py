"""tenant_context: the one way to touch a tenant's data plane.

    with tenant_context(tenant) as alias:
        Member.objects.all()              # routed to `alias` by TenantRouter
        connections[alias].cursor()...    # raw SQL sees the same tenant

On entry: register the placement's alias if needed (dedicated databases), open
a transaction on it and apply `app.current_tenant_id` and `search_path` with
`set_config(..., true)`, i.e. transaction-local. That is what keeps it correct
with persistent connections, the psycopg pool and PgBouncer transaction
pooling: the settings live exactly as long as the transaction that uses them.
On exit the transaction ends (so the settings are gone); when nested inside an
outer transaction (tests, ATOMIC_REQUESTS) the previous values are restored
explicitly before returning, so nothing remains either way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections, transaction
from psycopg import sql

from core import tenancy
from core.quotas import db_settings_for
from core.rls import GUC
from tenants.databases import data_plane_alias, register_placement
from tenants.models import Tenant


def search_path_for(schema_name: str) -> str:
    # The placement's schema first; `public` after it for control-plane tables in the same
    # transaction (the data-plane role has no privilege there). In a dedicated database the
    # schema *is* public. Always an explicit `pg_temp` last: a temporary table can never shadow a
    # tenant table (without it PostgreSQL searches pg_temp *first*).
    names = [schema_name] if schema_name == "public" else [schema_name, "public"]
    return sql.SQL(", ").join(sql.Identifier(n) for n in names).as_string(None) + ", pg_temp"


def load_tenant(tenant: Any) -> Tenant:
    """A Tenant (with its placement) from an instance, a uuid or a uuid string."""
    if isinstance(tenant, Tenant):
        if tenant.placement_id and tenant.placement is None:  # pragma: no cover - defensive
            tenant.refresh_from_db()
        return tenant
    return Tenant.objects.select_related("placement").get(pk=tenant if isinstance(tenant, uuid.UUID) else str(tenant))


class NoPlacement(Exception):
    """The tenant has no placement yet (still provisioning, or failed)."""


@contextmanager
def tenant_context(tenant: Any, *, data_plane: bool = False) -> Iterator[str]:
    """Enter `tenant`'s data plane (Tenant instance or id); yields the connection alias to use.

    `data_plane=True` (requests on the tenant's host): the data-plane role's alias, and every
    model routed to it."""
    tenant = load_tenant(tenant)
    placement = tenant.placement
    if placement is None:
        raise NoPlacement(f"Tenant {tenant.slug} has no placement.")
    alias = data_plane_alias(placement) if data_plane else register_placement(placement)
    # Per-plan statement_timeout / work_mem on the tenant's own requests (noisy neighbours); operator
    # work in a tenant's context (provisioning, moves, collection) keeps the server's defaults.
    limits = db_settings_for(tenant.plan) if data_plane else {}
    with applied(
        alias,
        tenant_id=tenant.pk,
        schema_name=placement.schema_name,
        data_plane=data_plane,
        plan=tenant.plan,
        limits=limits,
        quotas_exceeded=tuple(tenant.quotas_exceeded or ()),
    ):
        yield alias


@contextmanager
def applied(
    alias: str,
    *,
    tenant_id: uuid.UUID | None,
    schema_name: str,
    data_plane: bool = False,
    plan: str = "",
    limits: dict[str, str] | None = None,
    quotas_exceeded: tuple[str, ...] = (),
) -> Iterator[str]:
    """Lower level: apply a tenant id (or None = no tenant) and schema to `alias` inside a transaction;
    `limits` (statement_timeout, work_mem) are set transaction-local too, and so end with it."""
    conn = connections[alias]
    nested = conn.in_atomic_block
    active = (
        tenancy.ActiveTenant(
            tenant_id=tenant_id,
            alias=alias,
            schema_name=schema_name,
            data_plane=data_plane,
            plan=plan,
            quotas_exceeded=quotas_exceeded,
        )
        if tenant_id
        else None
    )
    with tenancy.activated(active):
        with transaction.atomic(using=alias):
            with conn.cursor() as cursor:
                if nested:
                    cursor.execute("SELECT current_setting(%s, true), current_setting('search_path')", [GUC])
                    previous = cursor.fetchone()
                previous_limits: list[tuple[str, str]] = []
                if nested:
                    for name in limits or {}:
                        cursor.execute("SELECT current_setting(%s)", [name])
                        previous_limits.append((name, cursor.fetchone()[0]))
                # One round trip: tenant, search_path and the plan's limits (names from the fixed list in
                # core.quotas.db_settings_for, values as parameters).
                extra = "".join(", set_config(%s, %s, true)" for _ in limits or {})
                cursor.execute(
                    "SELECT set_config(%s, %s, true), set_config('search_path', %s, true)" + extra,
                    [GUC, str(tenant_id) if tenant_id else "", search_path_for(schema_name)]
                    + [item for pair in (limits or {}).items() for item in pair],
                )
            yield alias
            if nested and not conn.needs_rollback:
                with conn.cursor() as cursor:
                    for name, value in previous_limits:
                        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
                    cursor.execute(
                        "SELECT set_config(%s, %s, true), set_config('search_path', %s, true)",
                        [GUC, previous[0] or "", previous[1]],
                    )


def current_settings(alias: str = "default") -> tuple[str | None, str]:
    """(app.current_tenant_id, search_path) as the connection sees them now; for tests and diagnostics."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true), current_setting('search_path')", [GUC])
        value, path = cursor.fetchone()
    return (value or None), path
