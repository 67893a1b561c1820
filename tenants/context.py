"""tenant_context: the one way to touch a tenant's data plane.

    with tenant_context(tenant) as alias:
        Member.objects.all()              # routed to `alias` by TenantRouter
        connections[alias].cursor()...    # raw SQL sees the same tenant

On entry: register the placement's alias if needed (dedicated databases), open
a transaction on it and apply `app.current_tenant_id` and `search_path` with
`set_config(..., true)`, i.e. transaction-local — sent in the same round trip as
the transaction's first statement (`_TenantSettings`). Read-only units of work may
skip the transaction (`autocommit=True`): each statement then carries the settings
in its own implicit transaction, one round trip each, no BEGIN or COMMIT. That is what keeps it correct
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

import psycopg
from django.db import connections, transaction
from psycopg import pq, sql

from core import tenancy
from core.quotas import db_settings_for
from core.rls import GUC
from tenants.databases import alias_in_use, control_data_alias, data_plane_alias, register_placement
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
def tenant_context(tenant: Any, *, data_plane: bool = False, autocommit: bool = False) -> Iterator[str]:
    """Enter `tenant`'s data plane (Tenant instance or id); yields the connection alias to use.

    `data_plane=True` (requests on the tenant's host): the data-plane role's alias, and every
    model routed to it. `autocommit=True`: no enclosing transaction (see `applied`)."""
    tenant = load_tenant(tenant)
    placement = tenant.placement
    if placement is None:
        raise NoPlacement(f"Tenant {tenant.slug} has no placement.")
    alias = data_plane_alias(placement) if data_plane else register_placement(placement)
    control = control_data_alias() if data_plane else None
    # Per-plan statement_timeout / work_mem on the tenant's own requests (noisy neighbours); operator
    # work in a tenant's context (provisioning, moves, collection) keeps the server's defaults.
    limits = db_settings_for(tenant.plan) if data_plane else {}
    with (
        alias_in_use(alias),
        applied(
            alias,
            tenant_id=tenant.pk,
            schema_name=placement.schema_name,
            data_plane=data_plane,
            control_alias=control,
            autocommit=autocommit,
            plan=tenant.plan,
            limits=limits,
            quotas_exceeded=tuple(tenant.quotas_exceeded or ()),
        ),
    ):
        yield alias


_SET_SQL = "SELECT set_config(%s, %s, true), set_config('search_path', %s, true)"


def _settings_statement(tenant: str, path: str, limits: dict[str, str]) -> tuple[str, list[str]]:
    """One statement setting the tenant, the search_path and the plan's limits, all transaction-local
    (limit names come from the fixed list in core.quotas.db_settings_for, values are parameters)."""
    extra = "".join(", set_config(%s, %s, true)" for _ in limits)
    return _SET_SQL + extra, [GUC, tenant, path, *(item for pair in limits.items() for item in pair)]


class _TenantSettings:
    """Execute wrapper: every statement that starts a transaction carries the tenant's settings.

    When the connection has no transaction open on the server, the statement goes out in the same
    message as `SELECT set_config(…, true), …;` (Django's psycopg cursors bind parameters client-side
    and use the simple query protocol, where one message with two statements is one implicit
    transaction): one network round trip, the settings first and local to the transaction that runs
    the statement. Inside a transaction (Django's atomic: psycopg's BEGIN, then this message) later
    statements pass through, the settings already set. In autocommit (read-only requests, see
    `tenant_context(autocommit=True)`) every statement is its own transaction carrying the settings —
    the settings and the statement, nothing else, which is also what PgBouncer in transaction mode
    hands to one server connection. A unit of work that runs no query sends nothing. Only the innermost
    tenant context's wrapper acts (nested contexts). `executemany` and server-side binding cursors get
    the same pair through a psycopg pipeline instead (one round trip too, more client work).
    """

    def __init__(self, statement: str, params: list[str]) -> None:
        self.statement = statement
        self.params = params
        self.prefix = ""

    def __call__(self, execute: Any, sql_text: Any, params: Any, many: bool, context: dict[str, Any]) -> Any:
        wrapper = context["connection"]
        pg = wrapper.connection
        innermost = [w for w in wrapper.execute_wrappers if isinstance(w, _TenantSettings)][-1]
        if innermost is not self or pg.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return execute(sql_text, params, many, context)
        raw = context["cursor"].cursor
        if many or not isinstance(raw, psycopg.ClientCursor) or not isinstance(sql_text, str):
            with wrapper.wrap_database_errors, pg.pipeline():
                pg.cursor().execute(self.statement, self.params)
                return execute(sql_text, params, many, context)
        if not self.prefix:
            # The settings statement with its values as literals (psycopg quotes them), then the statement.
            template = sql.SQL(self.statement.replace("%s", "{}") + "; ")
            self.prefix = template.format(*map(sql.Literal, self.params)).as_string(pg)
        prefix = self.prefix if params is None else self.prefix.replace("%", "%%")
        result = execute(prefix + sql_text, params, many, context)
        with wrapper.wrap_database_errors:
            raw.nextset()  # past set_config's row to the statement's own result
        return result


@contextmanager
def applied(
    alias: str,
    *,
    tenant_id: uuid.UUID | None,
    schema_name: str,
    data_plane: bool = False,
    control_alias: str | None = None,
    autocommit: bool = False,
    plan: str = "",
    limits: dict[str, str] | None = None,
    quotas_exceeded: tuple[str, ...] = (),
) -> Iterator[str]:
    """Lower level: apply a tenant id (or None = no tenant), schema and the plan's `limits`
    (statement_timeout, work_mem) to `alias`, all transaction-local.

    Inside one transaction, unless `autocommit` (and no transaction is open on `alias`): then every
    statement runs in its own implicit transaction, each carrying the settings (see _TenantSettings);
    for units of work that only read, or whose writes each open their own `transaction.atomic()`."""
    conn = connections[alias]
    nested = conn.in_atomic_block
    limits = limits or {}
    active = (
        tenancy.ActiveTenant(
            tenant_id=tenant_id,
            alias=alias,
            schema_name=schema_name,
            data_plane=data_plane,
            control_alias=control_alias,
            plan=plan,
            quotas_exceeded=quotas_exceeded,
        )
        if tenant_id
        else None
    )
    statement, params = _settings_statement(str(tenant_id) if tenant_id else "", search_path_for(schema_name), limits)
    with tenancy.activated(active):
        if autocommit and not nested:
            with conn.execute_wrapper(_TenantSettings(statement, params)):
                yield alias
            return
        with transaction.atomic(using=alias):
            if not nested:
                # Outermost: the settings travel with the transaction's first statement (see above).
                with conn.execute_wrapper(_TenantSettings(statement, params)):
                    yield alias
                return
            with conn.cursor() as cursor:
                cursor.execute("SELECT current_setting(%s, true), current_setting('search_path')", [GUC])
                previous = cursor.fetchone()
                previous_limits = {}
                for name in limits:
                    cursor.execute("SELECT current_setting(%s)", [name])
                    previous_limits[name] = cursor.fetchone()[0]
                cursor.execute(statement, params)
            yield alias
            if not conn.needs_rollback:
                with conn.cursor() as cursor:
                    cursor.execute(*_settings_statement(previous[0] or "", previous[1], previous_limits))


def current_settings(alias: str = "default") -> tuple[str | None, str]:
    """(app.current_tenant_id, search_path) as the connection sees them now; for tests and diagnostics."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true), current_setting('search_path')", [GUC])
        value, path = cursor.fetchone()
    return (value or None), path
