"""DDL for placements, always as the owner role: templates, cloning, migrating, dropping.

- Template schema `settings.TENANCY_TEMPLATE_SCHEMA` in the control-plane
  database and template database `<control-plane db>_tenant_tpl`: TENANT_APPS
  migrated into them, rebuilt whenever a TENANT_APPS migration is missing, so
  provisioning always clones something current.
- `clone_template_schema(dest)`: new pool or tenant schema = the template's
  tables (LIKE … INCLUDING ALL), foreign keys, RLS policies and migration
  records, in one transaction.
- `create_database_from_template(name)`: CREATE DATABASE … TEMPLATE, then grants.
- `migrate_placement(placement)`: run TENANT_APPS migrations in one placement
  (reused by cross-tenant migrations).
- `create_dedicated_database(name, credentials=…)`: a dedicated database with its own login roles;
  `data_plane_grants(schema)`: what tenant hosts' role may do in a pool or tenant schema.

Why one module: every function here is DDL or grants on placements, run as the owner (or the
bootstrap user) under the same template lock; kept together, the statement-by-statement
idempotency each one needs can be checked side by side.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from psycopg import sql

from core import dbroles, rls, tenancy
from events.ddl import TENANT_EVENT_TABLES
from tenants.crypto import encrypt_json
from tenants.databases import register_placement, unregister_alias
from tenants.validation import validate_database_name, validate_schema_name

logger = logging.getLogger(__name__)

TEMPLATE_ALIAS = "tenant_template"
TEMPLATE_LOCK_KEY = 0x7E4A47


@dataclass(frozen=True)
class ServerTarget:
    """Where DDL runs when it is not the control plane's own server (tenants.servers builds it from a
    Server row): the server's address, its tenant-data database and its admin login. Every function
    below takes `at=None` (the control plane's server, as before) or one of these."""

    name: str
    host: str
    port: str
    data_database: str
    admin: dict[str, str] = field(repr=False, default_factory=dict)

    def admin_info(self) -> dict[str, str]:
        return {"host": self.host, "port": self.port, **self.admin}


def _admin(at: ServerTarget | None) -> dict[str, str] | None:
    return at.admin_info() if at is not None else None


def control_plane_db() -> str:
    return connections.settings["owner"]["NAME"]


def template_schema() -> str:
    return validate_schema_name(settings.TENANCY_TEMPLATE_SCHEMA)


def template_database() -> str:
    return validate_database_name(f"{control_plane_db()}_tenant_tpl")


def dedicated_database_name(slug: str) -> str:
    """Prefixed with the control-plane database name, so parallel test runs never collide."""
    return validate_database_name(f"{control_plane_db()}_t_{slug.replace('-', '_')}")


def owner_settings(at: ServerTarget | None, dbname: str | None = None) -> dict[str, Any]:
    """The owner alias's settings, pointed at `dbname` on `at` (default: its tenant-data database)."""
    config = copy.deepcopy(connections.settings["owner"])
    if at is not None:
        config.update(HOST=at.host, PORT=at.port, NAME=at.data_database)
    if dbname:
        config["NAME"] = dbname
    return config


def owner_connect(
    dbname: str | None = None, *, autocommit: bool = False, at: ServerTarget | None = None
) -> psycopg.Connection:
    """The owner role on the control-plane database, or on `at`'s tenant-data database (or `dbname`)."""
    return psycopg.connect(**dbroles.conninfo(owner_settings(at, dbname)), autocommit=autocommit, connect_timeout=10)


def tenant_app_labels() -> list[str]:
    return [label.rsplit(".", 1)[-1] for label in settings.TENANT_APPS]


def expected_migrations() -> set[tuple[str, str]]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    labels = set(tenant_app_labels())
    return {key for key in loader.disk_migrations if key[0] in labels}


def applied_in(cursor: Any, schema: str) -> set[tuple[str, str]] | None:
    """The migrations recorded in `schema` (None: no django_migrations table); a psycopg cursor or Django's."""
    cursor.execute("SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'django_migrations'", [schema])
    if cursor.fetchone() is None:
        return None
    cursor.execute(sql.SQL("SELECT app, name FROM {}.django_migrations").format(sql.Identifier(schema)))
    return {(app, name) for app, name in cursor.fetchall()}


def schema_exists(schema: str, dbname: str | None = None, *, at: ServerTarget | None = None) -> bool:
    with owner_connect(dbname, autocommit=True, at=at) as conn:
        return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone() is not None


# --- migrating one placement ---------------------------------------------------


def _executor_run(alias: str, schema: str, *, plan_only: bool) -> list[tuple[str, str]]:
    return _executor_run_with(connections.settings[alias], schema, plan_only=plan_only)


def _executor_run_with(config: dict[str, Any], schema: str, *, plan_only: bool) -> list[tuple[str, str]]:
    # A private, temporary alias with the owner settings of `alias`: the session-level search_path
    # below must never reach a shared connection (which may be inside someone's transaction), and
    # the migration recorder looks its connection up by alias, so it has to be a registered one.
    private = f"tenant_migrate_{uuid.uuid4().hex[:12]}__owner"
    connections.settings[private] = copy.deepcopy(config)
    connection = connections[private]
    try:
        with tenancy.placement_migration():
            connection.ensure_connection()
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("SET search_path TO {}, pg_temp").format(sql.Identifier(schema)).as_string(None))
            executor = MigrationExecutor(connection)
            labels = set(tenant_app_labels())
            targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] in labels]
            plan = executor.migration_plan(targets)
            names = [(m.app_label, m.name) for m, backwards in plan if not backwards]
            if not plan_only and plan:
                executor.migrate(targets, plan=plan)
            return names
    finally:
        connection.close()
        del connections[private]
        connections.settings.pop(private, None)


def migrate_placement(placement: Any, *, plan_only: bool = False) -> list[tuple[str, str]]:
    """Apply (or with plan_only, list) pending TENANT_APPS migrations in one placement, as the owner."""
    if placement.database_alias == "default":
        return _executor_run("owner", validate_schema_name(placement.schema_name), plan_only=plan_only)
    register_placement(placement)
    # A dedicated database's tables are in public; a pool or schema on another server, in its schema.
    schema = validate_schema_name(placement.schema_name) if placement.schema_name != "public" else "public"
    return _executor_run(placement.owner_alias, schema, plan_only=plan_only)


# --- template schema -------------------------------------------------------------


def template_schema_is_current(at: ServerTarget | None = None) -> bool:
    with owner_connect(autocommit=True, at=at) as conn, conn.cursor() as cursor:
        applied = applied_in(cursor, template_schema())
    return applied is not None and expected_migrations() <= applied


def template_schema_rebuild(at: ServerTarget | None = None) -> None:
    schema = sql.Identifier(template_schema())
    with owner_connect(autocommit=True, at=at) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
    _executor_run_with(owner_settings(at), template_schema(), plan_only=False)
    logger.info("tenant template schema rebuilt")


def template_schema_ensure(at: ServerTarget | None = None) -> None:
    if template_schema_is_current(at):
        return
    with owner_connect(autocommit=True, at=at) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [TEMPLATE_LOCK_KEY])
        try:
            if not template_schema_is_current(at):
                template_schema_rebuild(at)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [TEMPLATE_LOCK_KEY])


def clone_template_schema(dest: str, *, comment: str = "", at: ServerTarget | None = None) -> None:
    """Create schema `dest` as a copy of the template schema's structure (no rows but migration
    records), in the control-plane database or in `at`'s tenant-data database (its own template).

    `comment` (COMMENT ON SCHEMA, in the same transaction) lets a caller recognise a schema it made."""
    dest = validate_schema_name(dest)
    src = template_schema()
    template_schema_ensure(at)
    S, D = sql.Identifier(src), sql.Identifier(dest)
    with owner_connect(at=at) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA {}").format(D))
        if comment:
            cur.execute(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(D, sql.Literal(comment)))
        cur.execute(
            "SELECT c.relname, c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY c.relname",
            [src],
        )
        tables = cur.fetchall()
        for table, _rls in tables:
            cur.execute(
                sql.SQL("CREATE TABLE {}.{} (LIKE {}.{} INCLUDING ALL)").format(
                    D, sql.Identifier(table), S, sql.Identifier(table)
                )
            )
        # Foreign keys are not copied by LIKE: read their definitions unqualified, recreate in dest.
        cur.execute(sql.SQL("SET LOCAL search_path TO {}, pg_temp").format(S))
        cur.execute(
            "SELECT t.relname, con.conname, pg_get_constraintdef(con.oid) FROM pg_constraint con "
            "JOIN pg_class t ON t.oid = con.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = %s AND con.contype = 'f' ORDER BY con.conname",
            [src],
        )
        foreign_keys = cur.fetchall()
        cur.execute(sql.SQL("SET LOCAL search_path TO {}, pg_temp").format(D))
        for table, name, definition in foreign_keys:
            # `definition` is PostgreSQL's own rendering of a catalog constraint, not user input.
            cur.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.Identifier(table), sql.Identifier(name))
                + sql.SQL(definition)  # noqa: S608
            )
        for table, has_rls in tables:
            if has_rls:
                for statement in rls.enable_statements(table):
                    cur.execute(statement)
        from events.ddl import after_schema_clone  # event logs: triggers, functions, grants (not copied by LIKE)

        after_schema_clone(cur)
        for grant in data_plane_grants(dest):
            cur.execute(grant)
        cur.execute(
            sql.SQL(
                "INSERT INTO {}.django_migrations (app, name, applied) SELECT app, name, applied FROM {}.django_migrations"
            ).format(D, S)
        )
        conn.commit()


def data_plane_grants(schema: str) -> list[sql.Composed]:
    """What the data-plane role of tenant hosts may do in a pool or tenant schema: DML on its
    TENANT_APPS tables (events: read and append only), nothing on its migration history. Every
    statement is idempotent; tables added by later migrations get the same by default privileges."""
    S, data = sql.Identifier(schema), sql.Identifier(settings.DB_DATA_ROLE)
    owner = sql.Identifier(settings.DB_OWNER_ROLE)
    statements = [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(S, data),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(S, data),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(S, data),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
        ).format(owner, S, data),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT USAGE, SELECT ON SEQUENCES TO {}").format(
            owner, S, data
        ),
        sql.SQL("REVOKE ALL ON {}.django_migrations FROM {}").format(S, data),
    ]
    for table in TENANT_EVENT_TABLES:
        statements.append(
            sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {}.{} FROM {}").format(S, sql.Identifier(table), data)
        )
    return statements


def data_plane_grants_all() -> int:
    """Re-apply the data-plane grants to every pool and tenant schema (idempotent; `make run`
    does it so placements made before the role existed serve their hosts too)."""
    # At call time: placements (DDL) sits below the models that record them.
    from tenants.models import Placement

    schemas = list(
        Placement.objects.exclude(kind=Placement.Kind.DATABASE)
        .filter(database_alias="default")
        .values_list("schema_name", flat=True)
    )
    with owner_connect() as conn, conn.cursor() as cur:
        for schema in schemas:
            if schema_exists(schema):
                for statement in data_plane_grants(schema):
                    cur.execute(statement)
        conn.commit()
    return len(schemas)


def drop_schema(schema: str, *, at: ServerTarget | None = None) -> None:
    schema = validate_schema_name(schema)
    if schema == template_schema():
        raise ValueError("Refusing to drop the template schema here.")
    with owner_connect(autocommit=True, at=at) as conn:
        # Fail (and let the caller retry) rather than queue forever behind a transaction using the schema.
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# --- template database -------------------------------------------------------------


class TemplatePlacement:
    """Enough of a Placement to register aliases for the template database."""

    kind = "database"
    schema_name = "public"
    db_host = settings.TENANCY_DEDICATED_HOST
    db_port = settings.TENANCY_DEDICATED_PORT
    database_alias = TEMPLATE_ALIAS
    owner_alias = f"{TEMPLATE_ALIAS}__owner"

    def __init__(self, at: ServerTarget | None = None) -> None:
        self.db_name = template_database()
        self.credentials_encrypted = encrypt_json(local_credentials())
        if at is not None:
            self.db_host, self.db_port = at.host, at.port
            self.database_alias = f"{TEMPLATE_ALIAS}_{at.name}"
            self.owner_alias = f"{self.database_alias}__owner"


def local_credentials() -> dict[str, str]:
    return {
        "app_user": settings.DB_APP_ROLE,
        "app_password": settings.DB_APP_PASSWORD,
        "owner_user": settings.DB_OWNER_ROLE,
        "owner_password": settings.DB_OWNER_PASSWORD,
    }


def database_exists(name: str, *, at: ServerTarget | None = None) -> bool:
    with owner_connect(autocommit=True, at=at) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def template_database_is_current(at: ServerTarget | None = None) -> bool:
    name = template_database()
    if not database_exists(name, at=at):
        return False
    with owner_connect(name, autocommit=True, at=at) as conn, conn.cursor() as cursor:
        applied = applied_in(cursor, "public")
    return applied is not None and expected_migrations() <= applied


def template_database_rebuild(at: ServerTarget | None = None) -> None:
    name = template_database()
    placement = TemplatePlacement(at)
    unregister_alias(placement.database_alias)
    dbroles.ensure_database(name, recreate=True, server=_admin(at))
    try:
        migrate_placement(placement)
    finally:
        unregister_alias(placement.database_alias)  # CREATE DATABASE … TEMPLATE needs it without connections
    logger.info("tenant template database rebuilt")


def template_database_ensure(at: ServerTarget | None = None) -> None:
    with owner_connect(autocommit=True, at=at) as conn:
        _with_template_lock(conn, lambda: None, at=at)


def _with_template_lock(conn: psycopg.Connection, then, *, at: ServerTarget | None = None) -> None:
    # One lock around "is the template current / rebuild / CREATE DATABASE … TEMPLATE": CREATE
    # DATABASE fails while anyone else is connected to the template, e.g. to check it.
    conn.execute("SELECT pg_advisory_lock(%s)", [TEMPLATE_LOCK_KEY + 1])
    try:
        if not template_database_is_current(at):
            template_database_rebuild(at)
        then()
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [TEMPLATE_LOCK_KEY + 1])


def templates_rebuild() -> None:
    """Rebuild both templates from the current TENANT_APPS migrations."""
    template_schema_rebuild()
    template_database_rebuild()


def dedicated_roles(db_name: str) -> tuple[str, str]:
    """The owner and app login roles of one dedicated database (names ≤ 63 bytes whatever the slug)."""
    digest = hashlib.sha256(db_name.encode()).hexdigest()[:16]
    return f"tdb_{digest}_owner", f"tdb_{digest}_app"


def new_dedicated_credentials(db_name: str) -> dict[str, str]:
    """The logins of a new dedicated database: its own owner and app roles with fresh passwords."""
    owner_role, app_role = dedicated_roles(db_name)
    return {
        "owner_user": owner_role,
        "owner_password": secrets.token_urlsafe(24),
        "app_user": app_role,
        "app_password": secrets.token_urlsafe(24),
    }


def role_comment(db_name: str) -> str:
    return f"dedicated:{db_name}"


def create_dedicated_database(name: str, *, credentials: dict[str, str], at: ServerTarget | None = None) -> None:
    """A dedicated tenant database from the template, owned by its own owner role, with its own app
    role as the only other role that may connect.

    Statement-level crash safety: every statement below is idempotent and they all run every time
    (nothing is skipped because the database already exists), so a worker killed between any two of
    them leaves something the retry completes — e.g. a database whose `REVOKE … FROM PUBLIC` ran but
    whose `GRANT CONNECT` did not."""
    name = validate_database_name(name)
    owner_role, app_role = credentials["owner_user"], credentials["app_user"]
    comment = role_comment(name)
    admin_server = _admin(at)
    dbroles.ensure_login_role(owner_role, credentials.get("owner_password", ""), comment=comment, server=admin_server)
    dbroles.ensure_login_role(app_role, credentials.get("app_password", ""), comment=comment, server=admin_server)
    statement = sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(owner_role), sql.Identifier(template_database())
    )

    def create() -> None:
        if not database_exists(name, at=at):
            with dbroles.admin_connect(server=admin_server) as admin:
                admin.execute(statement)

    with owner_connect(autocommit=True, at=at) as conn:
        _with_template_lock(conn, create, at=at)
    OWN, A, D = sql.Identifier(owner_role), sql.Identifier(app_role), sql.Identifier(name)
    with dbroles.admin_connect(server=admin_server) as admin:
        admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(D))
        admin.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(D, A))
        for role in (OWN, A):
            admin.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = public, pg_temp").format(role, D))
    with dbroles.admin_connect(name, server=admin_server) as admin:
        _transfer_ownership(admin, owner_role)
        for text in (
            "REVOKE ALL ON SCHEMA public FROM PUBLIC",
            "GRANT USAGE ON SCHEMA public TO {app}",
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {shared_app}",
            "REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {shared_app}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}",
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}",
            # Nothing at all: provisioning and the migration-state check read the history as the owner.
            "REVOKE ALL ON django_migrations FROM {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT USAGE, SELECT ON SEQUENCES TO {app}",
        ):
            admin.execute(sql.SQL(text).format(owner=OWN, app=A, shared_app=sql.Identifier(settings.DB_APP_ROLE)))
        for table in TENANT_EVENT_TABLES:
            admin.execute(sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(sql.Identifier(table), A))


def _transfer_ownership(admin: psycopg.Connection, owner_role: str) -> None:
    """Everything the template's owner owned in `public` now belongs to the database's own owner.

    One ALTER per object, each chosen by asking the catalog again: a rerun only does what is left."""
    OWN = sql.Identifier(owner_role)
    admin.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(OWN))
    tables = admin.execute(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') AND pg_get_userbyid(c.relowner) <> %s",
        [owner_role],
    ).fetchall()
    for (table,) in tables:  # regclass text: already quoted by PostgreSQL
        admin.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.SQL(table), OWN))  # noqa: S608
    sequences = admin.execute(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'S' AND pg_get_userbyid(c.relowner) <> %s "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))",
        [owner_role],
    ).fetchall()
    for (sequence,) in sequences:
        admin.execute(sql.SQL("ALTER SEQUENCE {} OWNER TO {}").format(sql.SQL(sequence), OWN))  # noqa: S608
    functions = admin.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> %s",
        [owner_role],
    ).fetchall()
    for (function,) in functions:
        admin.execute(sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(sql.SQL(function), OWN))  # noqa: S608


def drop_dedicated_roles(db_name: str, *, at: ServerTarget | None = None) -> None:
    dbroles.drop_login_roles(*dedicated_roles(db_name), server=_admin(at))


def create_database_from_template(name: str) -> None:
    name = validate_database_name(name)
    statement = sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(settings.DB_OWNER_ROLE), sql.Identifier(template_database())
    )
    with owner_connect(autocommit=True) as conn:
        _with_template_lock(conn, lambda: conn.execute(statement))
    dbroles.grant_database(name)


def drop_database(name: str, *, at: ServerTarget | None = None) -> None:
    name = validate_database_name(name)
    if name in (template_database(), control_plane_db()) or (at is not None and name == at.data_database):
        raise ValueError("Refusing to drop a template, tenant-data or the control-plane database here.")
    dbroles.drop_database(name, server=_admin(at))


def server_data_database_ensure(at: ServerTarget) -> None:
    """The project's roles on `at` (same names and passwords as here) and its tenant-data database
    (pools and own schemas), owned by the owner role with the same grants as the control-plane
    database. Every statement is idempotent; the templates follow lazily, at the first placement."""
    dbroles.ensure_database(validate_database_name(at.data_database), server=_admin(at))
