"""Copying one tenant's rows between two placements, table by table, with COPY.

Every TENANT_APPS table is copied with `COPY (SELECT … WHERE tenant_id = …) TO STDOUT` on the source
streamed into `COPY … FROM STDIN` on the target (binary format), through a temporary table, then
inserted. Both sides are private psycopg connections as the placement's owner role, with the tenant's
GUC set (FORCE'd RLS applies to the owner too, so neither side can see another tenant's rows).

Ids. Rows keep their primary keys (ledger events name accounts by id, sessions name members by id,
and the immutable event log cannot be rewritten), except the event log's own `event_id`: pools share
one sequence per table, so events get new ids from the target's sequence, inserted in the source's
order, with the target's `tx_id`; `prev_hash` and `hash` are the source's in a bulk copy (checked after
it: chain_breaks), recomputed by the target's insert trigger in a catch-up. Events are matched
across the two copies by `event_uuid`; checkpoints (the only rows that name an event id) are remapped
to the target's ids after each copy. Before copying into a pool, its sequences are moved past the
source's (plus `TENANCY_MOVE_ID_HEADROOM`), so its other tenants never draw one of the moving tenant's ids.

Catch-up and delta copy only the keys the source's change tracking recorded (tracking.py): a changed
key's row is deleted in the target and copied again (a deleted row stays deleted). Verification uses
a per-row digest, `md5(ROW(columns)::text)`, computed on each side over the same columns (for events
that includes `prev_hash` and `hash`: the chain the target recomputed must equal the source's); a
table's checksum is the sum of its rows' digests modulo 2**64, so the frozen step can carry the
checksum verified at the catch-up forward by the changed rows only. Every step is idempotent: the
bulk copy skips rows already there, catch-up and delta re-copy whatever was recorded, so a worker
killed between any two statements leaves something the retry completes.

Why one module: the bulk copy, the delta, the checksums and the purge all depend on the same
per-table description (key, kept or renumbered id, digest columns) and must agree on it exactly.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections
from psycopg import sql

from core import dbroles
from core.rls import GUC
from events.ddl import TRUSTED_CHAIN_SETTING
from tenants import servers
from tenants.databases import register_placement
from tenants.moves import tracking

EVENT_TABLE = "tenantlog_event"
CHECKPOINT_TABLE = "tenantlog_checkpoint"


class MoveError(Exception):
    """The copy cannot be completed as things are (a collision, a mismatch); one sentence."""


@dataclass(frozen=True)
class Table:
    name: str
    pk: str
    key: str  # the column that identifies a row in both copies
    key_type: str  # the SQL type of `key`, for `= ANY(%s::type[])`
    columns: tuple[str, ...]
    renumber: bool  # primary key drawn afresh from the target's sequence (the event log)
    serial: bool  # primary key from a sequence (moved past the source's before copying into a pool)
    derived: tuple[str, ...] = ()  # stamped by the target's triggers, never inserted
    remapped: tuple[str, ...] = ()  # rewritten after the copy, so left out of the digest

    @property
    def insert_columns(self) -> tuple[str, ...]:
        skip = set(self.derived) | ({self.pk} if self.renumber else set())
        return tuple(c for c in self.columns if c not in skip)

    @property
    def copy_columns(self) -> tuple[str, ...]:
        """What travels: the inserted columns, plus the source's primary key to keep the order."""
        extra = (self.pk,) if self.renumber else ()
        return self.insert_columns + extra

    @property
    def digest_columns(self) -> tuple[str, ...]:
        skip = {"tx_id", *self.remapped} | ({self.pk} if self.renumber else set())
        return tuple(c for c in self.columns if c not in skip)

    def digest_sql(self, alias: str = "") -> sql.Composable:
        prefix = sql.SQL(f"{alias}.") if alias else sql.SQL("")
        cols = sql.SQL(", ").join(prefix + sql.Identifier(c) for c in self.digest_columns)
        return sql.SQL("md5(ROW({})::text)").format(cols)


_SQL_TYPES = {"UUIDField": "uuid", "CharField": "text", "TextField": "text"}


def tenant_tables() -> list[Table]:
    """Every TENANT_APPS table, the event log before the checkpoints that name its ids."""
    # At call time: the model registry is ready only after start-up, and steps owns the list.
    from tenants.provisioning.steps import tenant_models

    tables = []
    for model in tenant_models():
        meta = model._meta
        pk = meta.pk.column
        columns = tuple(f.column for f in meta.concrete_fields)
        serial = meta.pk.get_internal_type() in ("AutoField", "BigAutoField", "SmallAutoField")
        if meta.db_table == EVENT_TABLE:
            table = Table(meta.db_table, pk, "event_uuid", "uuid", columns, True, True,
                          derived=("tx_id", "prev_hash", "hash"))  # fmt: skip
        else:
            key_type = "bigint" if serial else _SQL_TYPES.get(meta.pk.get_internal_type(), "text")
            remapped = ("tx_id", "event_id") if meta.db_table == CHECKPOINT_TABLE else ()
            table = Table(meta.db_table, pk, pk, key_type, columns, False, serial, remapped=remapped)
        tables.append(table)
    tables.sort(key=lambda t: (t.name == CHECKPOINT_TABLE, t.name != EVENT_TABLE, t.name))
    return tables


# --- connections --------------------------------------------------------------------------


def connect(placement: Any, tenant_id: Any) -> psycopg.Connection:
    """A private connection to `placement` as its owner, inside the tenant's RLS scope."""
    if placement.database_alias == "default":
        info = dbroles.conninfo(connections.settings["owner"])
    else:
        register_placement(placement)
        info = dbroles.conninfo(connections.settings[placement.owner_alias])
    conn = psycopg.connect(**info)
    path = sql.SQL("{}, pg_temp").format(sql.Identifier(placement.schema_name))
    # Session level is right here: the connection is this copy's alone and closed after it.
    conn.execute(sql.SQL("SET search_path TO {}").format(path))
    # Row digests are compared as text across two servers: render times and numbers the same way.
    conn.execute("SET TimeZone TO 'UTC'")
    conn.execute("SET DateStyle TO 'ISO, YMD'")
    conn.execute("SET extra_float_digits TO 3")
    # The event trigger looks up each stream's previous version; a plan cached while the target held
    # none of the tenant's events would scan the table for every row inserted (quadratic). Custom
    # plans see the table's real size each time.
    conn.execute("SET plan_cache_mode TO force_custom_plan")
    conn.execute("SELECT set_config(%s, %s, false)", [GUC, str(tenant_id)])
    conn.commit()
    return conn


# --- copying ------------------------------------------------------------------------------


def _idents(columns: Iterable[str], alias: str = "") -> sql.Composable:
    prefix = sql.SQL(f"{alias}.") if alias else sql.SQL("")
    return sql.SQL(", ").join(prefix + sql.Identifier(c) for c in columns)


def copy_rows(
    src: psycopg.Connection, tgt: psycopg.Connection, table: Table, tenant_id: Any, keys: list[str] | None = None,
    *, fresh: bool = False,
) -> int:  # fmt: skip
    """Stream the tenant's rows of `table` (all, or those whose key is in `keys`) from src into tgt and
    insert the ones tgt lacks; in tgt's open transaction (the caller commits). Returns rows inserted.

    Through a staging table (`COPY … FROM` refuses a table with row-level security), two ways in:
    - the event log of a `fresh` target (a schema or database made for this move, serving nobody):
      the source's `prev_hash` and `hash` are kept and the target's insert trigger is off for this
      transaction only — recomputing the chain row by row through the trigger cost about 100 µs per
      event; the caller re-verifies the whole chain afterwards (chain_breaks), which is one query;
    - otherwise rows already there (a retry) are dropped from the staging table, the rest inserted in
      the source's order (events through the target's hash-chain trigger, which in a pool's bulk copy
      takes the source's chain as given when the owner says so: events/ddl.py TRUSTED_CHAIN; the
      caller verifies it in the same way)."""
    T = sql.Identifier(table.name)
    where = sql.SQL("tenant_id = {}").format(sql.Literal(str(tenant_id)))
    if keys is not None:
        if not keys:
            return 0
        where += sql.SQL(" AND {} = ANY({}::{}[])").format(
            sql.Identifier(table.key), sql.Literal(keys), sql.SQL(table.key_type)
        )
    cur = tgt.cursor()
    given_chain = table.renumber and keys is None  # the source's prev_hash and hash travel
    trusted = fresh and given_chain
    columns = table.copy_columns + (("prev_hash", "hash") if given_chain else ())
    out_sql = sql.SQL("COPY (SELECT {} FROM {} WHERE {} ORDER BY {}) TO STDOUT (FORMAT BINARY)").format(
        _idents(columns), T, where, sql.Identifier(table.pk)
    )
    cur.execute("DROP TABLE IF EXISTS pg_temp._move_in")
    cur.execute(sql.SQL("CREATE TEMP TABLE _move_in AS SELECT {} FROM {} WITH NO DATA").format(_idents(columns), T))
    in_sql = sql.SQL("COPY _move_in ({}) FROM STDIN (FORMAT BINARY)").format(_idents(columns))
    with src.cursor().copy(out_sql) as out, cur.copy(in_sql) as into:
        for chunk in out:
            into.write(chunk)
    # Rows already there (a retry) leave the staging table first: an anti-join inside the INSERT
    # would rescan the rows the INSERT itself adds (invisible to it, but still read), quadratically.
    cur.execute(
        sql.SQL("DELETE FROM _move_in i USING {t} x WHERE x.{key} = i.{key}").format(t=T, key=sql.Identifier(table.key))
    )
    insert = table.insert_columns + (("prev_hash", "hash") if given_chain else ())
    values = _idents(insert, "i") + (sql.SQL(", pg_current_xact_id()") if trusted else sql.SQL(""))
    statement = sql.SQL("INSERT INTO {t} ({cols}{tx}) SELECT {values} FROM _move_in i ORDER BY i.{pk}").format(
        t=T, cols=_idents(insert), tx=sql.SQL(", tx_id") if trusted else sql.SQL(""), values=values,
        pk=sql.Identifier(table.pk),
    )  # fmt: skip
    inserted = 0
    rebuild = _drop_plain_indexes(cur, table) if fresh and keys is None else []
    if trusted:
        trigger = sql.Identifier(f"{table.name}_before_insert")
        cur.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(T, trigger))
        inserted = cur.execute(statement).rowcount
        cur.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}").format(T, trigger))
    elif table.renumber:
        # Into a pool the trigger stays on (other tenants write the table). In a bulk copy it takes
        # the source's chain as given, as the owner asks here (events/ddl.py TRUSTED_CHAIN; verified
        # after by chain_breaks); a catch-up's few events, and every event in a pool whose function
        # predates tenantlog 0003, go through its predecessor lookup. With no statistics on the target
        # yet the planner picks a scan for that lookup that grows with each stream (quadratic;
        # measured 10 s for 50,000 events): the first rows go in, ANALYZE (it counts this
        # transaction's own rows), then the rest with a plan that uses the stream index.
        if given_chain:
            cur.execute("SELECT set_config(%s, 'on', true)", [TRUSTED_CHAIN_SETTING])
        staged = cur.execute("SELECT count(*) FROM _move_in").fetchone()
        if staged and staged[0] > ANALYZE_AFTER:
            first = sql.SQL(" LIMIT {}").format(sql.Literal(ANALYZE_AFTER))
            inserted += cur.execute(statement + first).rowcount
            _analyze(cur, table.name)
            statement += sql.SQL(" OFFSET {}").format(sql.Literal(ANALYZE_AFTER))
        inserted += cur.execute(statement).rowcount
        if given_chain:
            cur.execute("SELECT set_config(%s, 'off', true)", [TRUSTED_CHAIN_SETTING])
    else:
        inserted = cur.execute(statement).rowcount
    for definition in rebuild:  # PostgreSQL's own rendering of a catalog index, not user input
        cur.execute(sql.SQL(definition))
    cur.execute("DROP TABLE pg_temp._move_in")
    return inserted


def _analyze(cur: psycopg.Cursor, table: str) -> None:
    """Statistics enough for the planner to prefer the stream index: a small sample (3,000 rows
    instead of 30,000) is ten times cheaper; autovacuum refines them after the copy's inserts."""
    cur.execute("SET LOCAL default_statistics_target = 10")
    cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def _drop_plain_indexes(cur: psycopg.Cursor, table: Table) -> list[str]:
    """On a fresh target, in the copy's transaction: drop the table's indexes that back no constraint
    and return their definitions, to build each once after the rows are in (as pg_restore does)
    instead of updating it row by row. Same names and definitions afterwards; a crash rolls back."""
    rows = cur.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        [table.name],
    ).fetchall()
    if rows:
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for name, _definition in rows:
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))  # regclass text: quoted by PostgreSQL
    return [definition for _name, definition in rows]


ANALYZE_AFTER = 1000


def last_event_id(conn: psycopg.Connection, tenant_id: Any) -> int:
    row = conn.execute("SELECT max(event_id) FROM tenantlog_event WHERE tenant_id = %s", [str(tenant_id)]).fetchone()
    conn.rollback()
    return int(row[0]) if row and row[0] is not None else 0


def count_rows(conn: psycopg.Connection, table: Table, tenant_id: Any) -> int:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(sql.Identifier(table.name)), [str(tenant_id)]
    ).fetchone()
    return int(row[0]) if row else 0


def sequence_value(conn: psycopg.Connection, table: Table) -> int:
    """The last value drawn from the table's primary-key sequence in this placement (0 if none)."""
    row = conn.execute("SELECT pg_get_serial_sequence(%s, %s)", [table.name, table.pk]).fetchone()
    if not row or not row[0]:
        return 0
    value = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(row[0]))).fetchone()  # noqa: S608
    return int(value[0]) if value and value[1] else 0


def advance_sequences(src: psycopg.Connection, tgt: psycopg.Connection, *, headroom: int = 0) -> None:
    """Move tgt's primary-key sequences of the kept-id tables past src's (+ headroom); never backwards."""
    for table in tenant_tables():
        if not table.serial or table.renumber:
            continue
        wanted = sequence_value(src, table) + headroom
        if wanted <= 0:
            continue
        row = tgt.execute("SELECT pg_get_serial_sequence(%s, %s)", [table.name, table.pk]).fetchone()
        if row and row[0] and sequence_value(tgt, table) < wanted:
            tgt.execute("SELECT setval(%s::regclass, %s)", [row[0], wanted])
    tgt.commit()


def bulk_copy(
    src: psycopg.Connection, tgt: psycopg.Connection, tenant_id: Any, progress: Callable[[str, int], None],
    *, fresh: bool = False,
) -> dict[str, int]:  # fmt: skip
    """Copy every table from one consistent snapshot of the source while the tenant keeps serving,
    then ANALYZE the copied event log (the chain check's join plans with the target's statistics,
    absent on a new placement). A commit of this session need not wait for its WAL flush: one lost
    in a crash is a table the retry copies again."""
    tgt.execute("SET synchronous_commit TO off")
    tgt.commit()
    src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    copied: dict[str, int] = {}
    try:
        for table in tenant_tables():
            copied[table.name] = copy_rows(src, tgt, table, tenant_id, fresh=fresh)
            tgt.commit()  # table by table: a retry skips what is already there
            progress(table.name, copied[table.name])
    finally:
        src.rollback()
    if copied.get(EVENT_TABLE):  # the chain check joins each event to its predecessor through an index
        _analyze(tgt.cursor(), EVENT_TABLE)
        tgt.commit()
    return copied


def apply_changes(src: psycopg.Connection, tgt: psycopg.Connection, tenant_id: Any, keys: dict[str, list[str]]) -> int:
    """Make tgt's rows with the given keys (per table) equal src's, in tgt's open transaction (the
    caller commits): rows of a changed key are deleted and copied again from src's snapshot, so a
    deleted row stays deleted. Events are append-only: only the ones tgt lacks are copied. Returns
    the rows copied or removed."""
    changed = 0
    for table in tenant_tables():
        wanted = keys.get(table.name)
        if not wanted:
            continue
        if not table.renumber:
            cur = tgt.execute(
                sql.SQL("DELETE FROM {} WHERE tenant_id = %s AND {} = ANY(%s::{}[])").format(
                    sql.Identifier(table.name), sql.Identifier(table.key), sql.SQL(table.key_type)
                ),
                [str(tenant_id), wanted],
            )
            changed += cur.rowcount
        changed += copy_rows(src, tgt, table, tenant_id, keys=wanted)
    if keys.get(CHECKPOINT_TABLE) or keys.get(EVENT_TABLE):
        remap_checkpoints(src, tgt, tenant_id)
    return changed


def digest_sums(
    conn: psycopg.Connection, tenant_id: Any, keys: dict[str, list[str]] | None = None
) -> dict[str, tuple[int, int]]:
    """Per table: (rows, checksum) of the tenant's rows (or only those with the given keys) in conn's
    current transaction, left open. The checksum is the sum modulo 2**64 of each row's digest (its
    first 64 bits): independent of row order, so no sort, and it can be updated by the rows that
    change — subtract their old digests, add their new ones — which is what the frozen step does."""
    result: dict[str, tuple[int, int]] = {}
    for table in tenant_tables():
        where: sql.Composed = sql.Composed([sql.SQL("tenant_id = %s")])
        params: list[Any] = [str(tenant_id)]
        if keys is not None:
            wanted = keys.get(table.name)
            if not wanted:
                result[table.name] = (0, 0)
                continue
            where += sql.SQL(" AND {} = ANY(%s::{}[])").format(sql.Identifier(table.key), sql.SQL(table.key_type))
            params.append(wanted)
        row = conn.execute(
            sql.SQL("SELECT count(*), coalesce(sum(('x' || left({}, 16))::bit(64)::bigint::numeric), 0)::text "
                    "FROM {} WHERE ").format(table.digest_sql(), sql.Identifier(table.name)) + where,
            params,
        ).fetchone()  # fmt: skip
        assert row is not None  # an aggregate always returns one row
        result[table.name] = (int(row[0]), int(row[1]) % 2**64)
    return result


def catch_up(
    src: psycopg.Connection, tgt: psycopg.Connection, *, move_id: Any, tenant_id: Any
) -> tuple[str, int, dict]:
    """While the tenant serves: in a REPEATABLE READ snapshot S of the source (left open for the
    frozen step), copy every row changed since the tracking began, then verify the whole copy — row
    counts and checksums of every table, each side over its own rows. Returns S (text), the rows
    copied or removed, and the verified {table: (rows, checksum)}."""
    src.rollback()
    src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    snap = tracking.snapshot(src)
    changed = apply_changes(src, tgt, tenant_id, tracking.changed_keys(src, move_id=move_id))
    tgt.commit()
    source, target = digest_sums(src, tenant_id), digest_sums(tgt, tenant_id)
    tgt.rollback()
    for name, (rows, checksum) in source.items():
        if rows != target[name][0]:
            raise MoveError(
                f"Verification failed: {name} has {rows} rows in the source and {target[name][0]} in the target."
            )
        if checksum != target[name][1]:
            raise MoveError(f"Verification failed: the checksums of {name} differ.")
    return snap, changed, source


def final_delta(
    before: psycopg.Connection, src: psycopg.Connection, tgt: psycopg.Connection, *, move_id: Any, tenant_id: Any,
    snap: str, base: dict[str, tuple[int, int]],
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    """With the source frozen: copy the rows changed after snapshot `snap` (still open on `before`)
    in one target transaction, and report per table the row count (counted on each side) and the
    checksum of each copy, carried forward from the verified `base` by the changed rows: the source's
    minus their digests in `snap` plus their digests now, the target's minus their digests before
    this copy plus after. Reads only the changed rows, plus one count per table."""
    src.rollback()
    src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    keys = tracking.changed_keys(src, move_id=move_id, not_visible_in=snap)
    old_src, new_src = digest_sums(before, tenant_id, keys), digest_sums(src, tenant_id, keys)
    old_tgt = digest_sums(tgt, tenant_id, keys)
    changed = apply_changes(src, tgt, tenant_id, keys)
    new_tgt = digest_sums(tgt, tenant_id, keys)
    tgt.commit()
    report: dict[str, Any] = {}
    for table in tenant_tables():
        name = table.name
        report[name] = {
            "rows": count_rows(src, table, tenant_id),
            "checksum": f"{(base[name][1] - old_src[name][1] + new_src[name][1]) % 2**64:016x}",
            "target_rows": count_rows(tgt, table, tenant_id),
            "target_checksum": f"{(base[name][1] - old_tgt[name][1] + new_tgt[name][1]) % 2**64:016x}",
            "changed": len(keys.get(name, ())),
        }
    tgt.rollback()
    src.rollback()
    before.rollback()
    return changed, report


def remap_checkpoints(src: psycopg.Connection, tgt: psycopg.Connection, tenant_id: Any) -> None:
    """A consumer's checkpoint names (tx_id, event_id) of the source: point it at the same event's
    target ids (matched by event_uuid). A checkpoint at nothing yet stays (0, 0)."""
    rows = src.execute(
        "SELECT c.name, e.event_uuid FROM tenantlog_checkpoint c JOIN tenantlog_event e "
        "ON e.event_id = c.event_id AND e.tenant_id = c.tenant_id WHERE c.tenant_id = %s",
        [str(tenant_id)],
    ).fetchall()
    for name, event_uuid in rows:
        tgt.execute(
            "UPDATE tenantlog_checkpoint c SET event_id = e.event_id, tx_id = e.tx_id::text::bigint "
            "FROM tenantlog_event e WHERE e.event_uuid = %s AND c.name = %s AND c.tenant_id = %s",
            [event_uuid, name, str(tenant_id)],
        )


def chain_breaks(conn: psycopg.Connection, tenant_id: Any, *, after_event_id: int = 0, end: bool = True) -> int:
    """Events of the tenant in this copy (those with a larger event_id than `after_event_id`) that do
    not follow from the previous version: it is missing, it is later, or the hash does not chain —
    everything the insert trigger enforces, so a copy made with the trigger off is held to it too.
    `end=False` leaves the caller's transaction open (a restore checks its own rows before committing)."""
    row = conn.execute(
        "SELECT count(*) FROM tenantlog_event e LEFT JOIN tenantlog_event p ON p.tenant_id = e.tenant_id "
        "AND p.aggregate_type = e.aggregate_type AND p.aggregate_id = e.aggregate_id AND p.version = e.version - 1 "
        "WHERE e.tenant_id = %s AND ((e.version > 1 AND p.event_id IS NULL) OR e.occurred_at < p.occurred_at "
        "OR e.prev_hash IS DISTINCT FROM p.hash OR e.hash <> events_hash(e.prev_hash, "
        "e.aggregate_type, e.aggregate_id, e.version, e.event_type, e.event_version, e.event_data, e.event_metadata, "
        "e.occurred_at, e.causation_id, e.correlation_id, e.tenant_id, e.event_uuid)) AND e.event_id > %s",
        [str(tenant_id), after_event_id],
    ).fetchone()
    if end:
        conn.rollback()
    return int(row[0]) if row else 0


def key_collisions(placement: Any, tenant_id: Any, source: psycopg.Connection) -> int:
    """How many of the tenant's kept ids another tenant already uses in pool `placement`. Read as the
    bootstrap superuser: FORCE'd RLS hides other tenants' rows from every other role, the owner too."""
    found = 0
    at = servers.placement_target(placement)  # the pool's server: its tenant-data database, its admin
    dbname = at.data_database if at else connections.settings["owner"]["NAME"]
    with dbroles.admin_connect(dbname, server=at.admin_info() if at else None) as admin:
        for table in tenant_tables():
            if table.renumber:
                continue
            keys = [
                r[0]
                for r in source.execute(
                    sql.SQL("SELECT {}::text FROM {} WHERE tenant_id = %s").format(
                        sql.Identifier(table.key), sql.Identifier(table.name)
                    ),
                    [str(tenant_id)],
                ).fetchall()
            ]
            if not keys:
                continue
            row = admin.execute(
                sql.SQL("SELECT count(*) FROM {}.{} WHERE {} = ANY(%s::{}[]) AND tenant_id <> %s").format(
                    sql.Identifier(placement.schema_name),
                    sql.Identifier(table.name),
                    sql.Identifier(table.key),
                    sql.SQL(table.key_type),
                ),  # fmt: skip
                [keys, str(tenant_id)],
            ).fetchone()
            found += int(row[0]) if row else 0
    source.rollback()
    return found


def purge_rows(placement: Any, tenant_id: Any) -> int:
    """Delete every row of the tenant in `placement` (a pool, or any placement before it is dropped),
    events included: the owner names the tenant in the setting the immutability trigger honours."""
    conn = connect(placement, tenant_id)
    deleted = 0
    try:
        conn.execute("SELECT set_config('events.purge_tenant_id', %s, true)", [str(tenant_id)])
        for table in reversed(tenant_tables()):
            cur = conn.execute(
                sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(sql.Identifier(table.name)), [str(tenant_id)]
            )
            deleted += cur.rowcount
        conn.commit()
    finally:
        conn.close()
    return deleted


def fingerprint(values: dict[str, dict[str, Any]]) -> str:
    """One short digest of a whole checksum report (shown on the move's page)."""
    text = ",".join(f"{k}:{v['rows']}:{v['checksum']}" for k, v in sorted(values.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def headroom() -> int:
    return int(getattr(settings, "TENANCY_MOVE_ID_HEADROOM", 1_000_000))


def new_uuid() -> str:
    return str(uuid.uuid4())
