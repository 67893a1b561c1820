"""Change tracking on a move's source: which of the tenant's rows changed after the bulk copy began.

Before the bulk copy takes its snapshot, every TENANT_APPS table of the source placement gets two row
triggers named after the move (`_move_<hex>_w` AFTER INSERT OR UPDATE, `_move_<hex>_d` AFTER DELETE),
each with a `WHEN (… tenant_id = '<tenant>')` clause: a pool's other tenants pay one comparison per
row written, no function call. For the moving tenant's rows the trigger appends (move, table, key,
`pg_current_xact_id()`) to `tenancy_move.change`, in the writing transaction, so the record commits
or rolls back with the write.

Why this is exact. `CREATE TRIGGER` takes a lock that waits for every transaction still writing the
table, so a write either committed before the triggers existed (and is in any snapshot taken after
them) or fires them. The xid stored with each change tells, for any snapshot `S` of the source,
whether that change is in `S` (`pg_visible_in_snapshot(tx, S)`): rows whose value differs between
`S` and a later moment are exactly the keys of changes not visible in `S`. Deletes are changes too
(the key is recorded; the row is then missing in the source and removed from the target).

The table lives in its own schema (`tenancy_move`, one per database, created by the placement's
owner) to keep it out of the placement schemas that compliance, privacy scans and migrations read.
The trigger function is SECURITY DEFINER (its owner appends; writers need no grant on the table).
Nobody but the owner has USAGE on the schema.

Not captured: TRUNCATE (refused on the event log; nothing truncates tenant tables) and writes in a
session with `session_replication_role = replica` (superuser only). The frozen step's full row
counts would show either as a difference.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import psycopg
import psycopg.errors
from psycopg import sql

SCHEMA = "tenancy_move"
LOCK_WAIT = "200ms"
DDL_ATTEMPTS = 150

_SETUP = [
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.change (id bigserial PRIMARY KEY, move_id uuid NOT NULL, "
    "tbl text NOT NULL, k text NOT NULL, tx xid8 NOT NULL DEFAULT pg_current_xact_id())",
    f"CREATE INDEX IF NOT EXISTS change_move ON {SCHEMA}.change (move_id)",
    f"REVOKE ALL ON {SCHEMA}.change FROM PUBLIC",
    # TG_ARGV: the move's id, the key column. The key is read through to_jsonb: one function serves
    # every table (the tenant's rows only, thanks to the WHEN clause).
    f"""CREATE OR REPLACE FUNCTION {SCHEMA}.track() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = {SCHEMA}, pg_temp AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO change (move_id, tbl, k) VALUES (TG_ARGV[0]::uuid, TG_TABLE_NAME, to_jsonb(OLD) ->> TG_ARGV[1]);
        ELSE
            INSERT INTO change (move_id, tbl, k) VALUES (TG_ARGV[0]::uuid, TG_TABLE_NAME, to_jsonb(NEW) ->> TG_ARGV[1]);
        END IF;
        RETURN NULL;
    END
    $$""",
]


def _trigger_names(move_id: Any) -> tuple[str, str]:
    hexid = str(move_id).replace("-", "")
    return f"_move_{hexid}_w", f"_move_{hexid}_d"


def _ddl(conn: psycopg.Connection, statement: sql.Composed) -> None:
    """One trigger statement in its own transaction, never waiting long for its table's lock.

    CREATE TRIGGER waits for the table's writers (and DROP TRIGGER for its readers too), and while it
    waits everyone after it queues behind it: on a pool that is every tenant. So each statement
    locks one table only (it can never hold one lock while waiting for another: no deadlock with a
    request that touches several tables), gives up after LOCK_WAIT, and tries again a moment later."""
    for attempt in range(DDL_ATTEMPTS):
        try:
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_WAIT)))
                conn.execute(statement)
            return
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            if attempt == DDL_ATTEMPTS - 1:
                raise
            time.sleep(min(0.05 * (attempt + 1), 0.5))


def _present(conn: psycopg.Connection, move_id: Any) -> set[tuple[str, str]]:
    rows = conn.execute(
        "SELECT c.relname::text, t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE c.relnamespace = current_schema()::regnamespace AND t.tgname = ANY(%s)",
        [list(_trigger_names(move_id))],
    ).fetchall()
    conn.commit()
    return {(r[0], r[1]) for r in rows}


def install(conn: psycopg.Connection, *, move_id: Any, tenant_id: Any, tables: list[Any]) -> None:
    """Start recording the tenant's changes in the placement `conn` is connected to (its owner, the
    placement's schema first on the search_path). Idempotent: existing triggers are kept, never
    re-created (a change between a drop and a create would be lost)."""
    conn.commit()
    with conn.transaction():
        for statement in _SETUP:
            conn.execute(statement)
    present = _present(conn, move_id)
    written, deleted = _trigger_names(move_id)
    tenant = sql.Literal(str(tenant_id))
    for table in tables:
        T = sql.Identifier(table.name)
        args = sql.SQL("{}, {}").format(sql.Literal(str(move_id)), sql.Literal(table.key))
        if (table.name, written) not in present:
            _ddl(
                conn,
                sql.SQL(
                    "CREATE TRIGGER {} AFTER INSERT OR UPDATE ON {} FOR EACH ROW WHEN (NEW.tenant_id = {}) "
                    "EXECUTE FUNCTION {}.track({})"
                ).format(sql.Identifier(written), T, tenant, sql.Identifier(SCHEMA), args),
            )
        if (table.name, deleted) not in present:
            _ddl(
                conn,
                sql.SQL(
                    "CREATE TRIGGER {} AFTER DELETE ON {} FOR EACH ROW WHEN (OLD.tenant_id = {}) "
                    "EXECUTE FUNCTION {}.track({})"
                ).format(sql.Identifier(deleted), T, tenant, sql.Identifier(SCHEMA), args),
            )


def uninstall(conn: psycopg.Connection, *, move_id: Any, tables: list[Any]) -> None:
    """Stop recording and forget the move's changes. Safe to repeat, and on a placement never tracked."""
    conn.commit()
    present = _present(conn, move_id)
    for table in tables:
        for name in _trigger_names(move_id):
            if (table.name, name) in present:
                _ddl(
                    conn,
                    sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(name), sql.Identifier(table.name)),
                )
    with conn.transaction():
        if conn.execute("SELECT to_regclass(%s)", [f"{SCHEMA}.change"]).fetchone() != (None,):
            conn.execute(
                sql.SQL("DELETE FROM {}.change WHERE move_id = %s").format(sql.Identifier(SCHEMA)), [str(move_id)]
            )


def changed_keys(
    conn: psycopg.Connection, *, move_id: Any, visible_in: str | None = None, not_visible_in: str | None = None
) -> dict[str, list[str]]:
    """Per table, the distinct keys recorded for the move in `conn`'s current snapshot — of changes
    inside snapshot `visible_in`, or outside `not_visible_in` (pg_snapshot text), or all."""
    where: sql.Composed = sql.Composed([sql.SQL("move_id = %s")])
    params: list[Any] = [str(move_id)]
    if visible_in is not None:
        where += sql.SQL(" AND pg_visible_in_snapshot(tx, %s::pg_snapshot)")
        params.append(visible_in)
    if not_visible_in is not None:
        where += sql.SQL(" AND NOT pg_visible_in_snapshot(tx, %s::pg_snapshot)")
        params.append(not_visible_in)
    rows = conn.execute(
        sql.SQL("SELECT DISTINCT tbl, k FROM {}.change WHERE ").format(sql.Identifier(SCHEMA)) + where, params
    ).fetchall()
    keys: dict[str, list[str]] = defaultdict(list)
    for table, key in rows:
        keys[table].append(key)
    return dict(keys)


def snapshot(conn: psycopg.Connection) -> str:
    """The current transaction's snapshot, as text for `changed_keys`."""
    row = conn.execute("SELECT pg_current_snapshot()::text").fetchone()
    assert row is not None
    return str(row[0])
