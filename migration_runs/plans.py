"""Which migrations each target has applied and which are pending — read in bulk.

The expected list comes from Django's migration graph (MigrationLoader on the
migration files, no connection), in the order the executor would apply them.
Applied migrations come from each target's `django_migrations` table: one
query for every schema of the control-plane database (a UNION ALL over the
schemas that have the table), one query per dedicated database. No migration
executor is opened here, so a status page over thousands of placements costs a
handful of queries.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from psycopg import sql

from tenants import migration_state, placements
from tenants.models import Placement

CONTROL = migration_state.CONTROL
TEMPLATE_SCHEMA = migration_state.TEMPLATE_SCHEMA
TEMPLATE_DATABASE = migration_state.TEMPLATE_DATABASE
_UNION_CHUNK = 400  # schemas per UNION ALL statement
_READ_THREADS = 8  # databases read concurrently

MigrationKey = tuple[str, str]
Target = migration_state.Location


@dataclass
class TargetStatus:
    target: Target
    applied: list[MigrationKey]
    pending: list[MigrationKey]
    missing: bool = False  # no django_migrations table (schema/database gone or never migrated)
    error: str = ""
    # From the control plane's record (selectors.status_overview), not from reading the target:
    drift: str = ""
    verified_at: Any = None
    recorded_at: Any = None

    @property
    def is_current(self) -> bool:
        return not self.pending and not self.missing and not self.error and self.recorded

    @property
    def recorded(self) -> bool:
        """False for a placement the control plane has no record of yet (nothing is known of it)."""
        return self.target.placement_id is None or self.recorded_at is not None


def fmt(key: MigrationKey) -> str:
    return f"{key[0]}.{key[1]}"


def parse(name: str) -> MigrationKey:
    app, _, migration = name.partition(".")
    return app, migration


# --- the graph ------------------------------------------------------------------------


_orders: dict[str, tuple[list[MigrationKey], list[MigrationKey]]] = {}


def migration_order() -> tuple[list[MigrationKey], list[MigrationKey]]:
    """(every migration, TENANT_APPS migrations), each in the order the executor applies them.

    Read from the migration files once per process (and per MIGRATION_MODULES, which tests change):
    a deploy that adds migrations restarts the processes."""
    key = repr(sorted((settings.MIGRATION_MODULES or {}).items()))
    if key not in _orders:
        _orders.clear()
        _orders[key] = _read_order()
    everything, tenant_only = _orders[key]
    return list(everything), list(tenant_only)


def _read_order() -> tuple[list[MigrationKey], list[MigrationKey]]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    graph = loader.graph
    ordered: list[MigrationKey] = []
    seen: set[MigrationKey] = set()
    for leaf in sorted(graph.leaf_nodes()):
        for key in graph.forwards_plan(leaf):
            if key not in seen:
                seen.add(key)
                ordered.append(key)
    labels = set(placements.tenant_app_labels())
    return ordered, [key for key in ordered if key[0] in labels]


# --- targets --------------------------------------------------------------------------


def targets(*, keys: list[str] | None = None, include_templates: bool = True) -> list[Target]:
    """Every migration target in a stable order: control plane, templates, then placements by id."""
    control_db = placements.control_plane_db()
    server = migration_state.control_server()
    found: list[Target] = [
        Target(CONTROL, "control", f"control plane ({control_db})", server, control_db, "public", False),
    ]
    if include_templates:
        found.append(
            Target(
                TEMPLATE_SCHEMA,
                "template_schema",
                placements.template_schema(),
                server,
                control_db,
                placements.template_schema(),
                True,
            )
        )
        if _database_exists(placements.template_database()):
            tpl = placements.template_database()
            found.append(Target(TEMPLATE_DATABASE, "template_database", tpl, server, tpl, "public", True))
    wanted_ids = None
    if keys is not None:
        wanted = set(keys)
        found = [t for t in found if t.key in wanted]
        wanted_ids = [int(k.split(":", 1)[1]) for k in wanted if k.startswith("placement:") and k[10:].isdigit()]
    query = Placement.objects.order_by("id")
    if wanted_ids is not None:
        query = query.filter(pk__in=wanted_ids)
    found.extend(migration_state.placement_location(p, control_db) for p in query)
    return found


def _database_exists(name: str) -> bool:
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


def target_conninfo(target: Target) -> dict[str, Any]:
    if target.conninfo:
        return target.conninfo
    info = migration_state.control_conninfo()
    info["dbname"] = target.dbname
    return info


# --- applied, in bulk -----------------------------------------------------------------


def _applied_in_schemas(conn: psycopg.Connection, schemas: list[str]) -> dict[str, set[MigrationKey] | None]:
    result: dict[str, set[MigrationKey] | None] = {s: None for s in schemas}
    rows = conn.execute(
        "SELECT schemaname FROM pg_tables WHERE tablename = 'django_migrations' AND schemaname = ANY(%s)",
        [schemas],
    ).fetchall()
    present = [r[0] for r in rows]
    for start in range(0, len(present), _UNION_CHUNK):
        chunk = present[start : start + _UNION_CHUNK]
        query = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {}::text, app, name FROM {}.django_migrations").format(sql.Literal(s), sql.Identifier(s))
            for s in chunk
        )
        for s in chunk:
            result[s] = set()
        for schema, app, name in conn.execute(query).fetchall():
            result[schema].add((app, name))  # type: ignore[union-attr]
    return result


def applied_bulk(found: list[Target]) -> dict[str, set[MigrationKey] | None | Exception]:
    """Applied migrations per target key (None: no django_migrations table; an Exception: unreachable)."""
    by_db: dict[tuple[str, str], list[Target]] = defaultdict(list)
    for t in found:
        by_db[(t.server, t.dbname)].append(t)
    out: dict[str, set[MigrationKey] | None | Exception] = {}

    def read(group: list[Target]) -> None:
        try:
            with psycopg.connect(**target_conninfo(group[0]), autocommit=True, connect_timeout=10) as conn:
                per_schema = _applied_in_schemas(conn, sorted({t.schema for t in group}))
        except psycopg.Error as exc:
            for t in group:
                out[t.key] = exc
            return
        for t in group:
            out[t.key] = per_schema.get(t.schema)

    control = (migration_state.control_server(), placements.control_plane_db())
    owner = connections["owner"]
    reuse = control in by_db and not owner.in_atomic_block
    groups = [group for key, group in by_db.items() if key != control or not reuse]
    if reuse:
        # The control-plane database (its schemas, the template schema) through this process' owner
        # connection, in autocommit (so a failed read cannot spoil anyone's transaction): no new connection.
        group = by_db[control]
        owner.ensure_connection()
        try:
            per_schema = _applied_in_schemas(owner.connection, sorted({t.schema for t in group}))
        except psycopg.Error as exc:
            per_schema = {}
            for t in group:
                out[t.key] = exc
        else:
            for t in group:
                out[t.key] = per_schema.get(t.schema)
    if len(groups) <= 2:
        for group in groups:
            read(group)
    else:
        # Many dedicated databases: one connection each, a few at a time.
        with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
            list(pool.map(read, groups))
    return out


def status(found: list[Target] | None = None) -> list[TargetStatus]:
    """Applied and pending migrations of every target (or of `found`)."""
    found = targets() if found is None else found
    everything, tenant_only = migration_order()
    applied = applied_bulk(found)
    result = []
    for t in found:
        expected = tenant_only if t.tenant_apps_only else everything
        got = applied.get(t.key)
        if isinstance(got, Exception):
            result.append(TargetStatus(t, [], list(expected), error=_one_line(got)))
            continue
        done = got or set()
        result.append(
            TargetStatus(
                t,
                applied=[k for k in expected if k in done],
                pending=[k for k in expected if k not in done],
                missing=got is None,
            )
        )
    return result


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"[:500]
