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
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from psycopg import sql

from core import dbroles
from tenants import placements
from tenants.crypto import decrypt_json
from tenants.models import Placement

CONTROL = "control"
TEMPLATE_SCHEMA = "template_schema"
TEMPLATE_DATABASE = "template_database"
_UNION_CHUNK = 400  # schemas per UNION ALL statement
_READ_THREADS = 8  # databases read concurrently by the status page

MigrationKey = tuple[str, str]
KIND_LABELS = {
    "control": "Control plane",
    "template_schema": "Template schema",
    "template_database": "Template database",
    "pool": "Pool schema",
    "schema": "Own schema",
    "database": "Dedicated database",
}


@dataclass
class Target:
    key: str  # control | template_schema | template_database | placement:<id>
    kind: str  # MigrationJob.Kind
    label: str
    server: str
    dbname: str
    schema: str
    tenant_apps_only: bool
    placement_id: int | None = None
    conninfo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


@dataclass
class TargetStatus:
    target: Target
    applied: list[MigrationKey]
    pending: list[MigrationKey]
    missing: bool = False  # no django_migrations table (schema/database gone or never migrated)
    error: str = ""

    @property
    def is_current(self) -> bool:
        return not self.pending and not self.missing and not self.error


def fmt(key: MigrationKey) -> str:
    return f"{key[0]}.{key[1]}"


def parse(name: str) -> MigrationKey:
    app, _, migration = name.partition(".")
    return app, migration


# --- the graph ------------------------------------------------------------------------


def migration_order() -> tuple[list[MigrationKey], list[MigrationKey]]:
    """(every migration, TENANT_APPS migrations), each in the order the executor applies them."""
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


def _server(host: str | None, port: str | int | None) -> str:
    return f"{host or 'localhost'}:{port or 5432}"


def _control_conninfo() -> dict[str, Any]:
    return dbroles.conninfo(connections.settings["owner"])


def control_server() -> str:
    owner = connections.settings["owner"]
    return _server(owner.get("HOST"), owner.get("PORT"))


def _placement_target(p: Placement, control_db: str) -> Target:
    if p.kind == Placement.Kind.DATABASE:
        info = _control_conninfo()
        creds = decrypt_json(p.credentials_encrypted) if p.credentials_encrypted else {}
        info.update(dbname=p.db_name)
        if creds.get("owner_user"):
            info.update(user=creds["owner_user"], password=creds.get("owner_password", ""))
        if p.db_host:
            info["host"] = p.db_host
        if p.db_port:
            info["port"] = p.db_port
        return Target(
            key=f"placement:{p.pk}",
            kind="database",
            label=p.db_name,
            server=_server(info.get("host"), info.get("port")),
            dbname=p.db_name,
            schema="public",
            tenant_apps_only=True,
            placement_id=p.pk,
            conninfo=info,
        )
    return Target(
        key=f"placement:{p.pk}",
        kind=p.kind,
        label=p.schema_name,
        server=control_server(),
        dbname=control_db,
        schema=p.schema_name,
        tenant_apps_only=True,
        placement_id=p.pk,
    )


def targets(*, keys: list[str] | None = None, include_templates: bool = True) -> list[Target]:
    """Every migration target in a stable order: control plane, templates, then placements by id."""
    control_db = placements.control_plane_db()
    server = control_server()
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
        if placements.database_exists(placements.template_database()):
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
    found.extend(_placement_target(p, control_db) for p in query)
    return found


def target_conninfo(target: Target) -> dict[str, Any]:
    if target.conninfo:
        return target.conninfo
    info = _control_conninfo()
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

    groups = list(by_db.values())
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
