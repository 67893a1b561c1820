"""Create the database roles and database, and the grants between them.

Two roles, never the bootstrap superuser at run time:
- owner (`DB_OWNER_ROLE`): owns the database, schemas and tables; runs
  migrations and provisioning DDL; CREATEDB for dedicated tenant databases.
- app (`DB_APP_ROLE`): what operator requests and Celery tasks log in as.
  NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE, owns nothing, and gets only
  DML on tables the owner creates (default privileges), so RLS always applies;
  `least_privilege()` then takes back what it never uses.
- data (`DB_DATA_ROLE`): requests on a tenant's host. Like app, but with DML on
  the TENANT_APPS tables of pool and tenant schemas only (granted when a schema is
  cloned) and the one cache table of workspace lockouts; it cannot read a single
  control-plane table (placements, users, sagas, audit, domains).
- Dedicated tenant databases get their own owner and app login roles
  (`ensure_login_role`, tenants/provisioning/steps.py), so one tenant database's
  credentials never open another's.

Every database sets `search_path` to end with an explicit `pg_temp` for each role
(`ALTER ROLE … IN DATABASE … SET`), so a temporary table can never shadow a real one.

Every identifier goes through psycopg.sql.Identifier; every value is a parameter.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.conf import settings
from psycopg import sql


def _admin_conninfo(dbname: str, server: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bootstrap user on the control plane's server, or `server` ({host, port, user, password}:
    another registered server's admin login)."""
    if server is not None:
        return {"dbname": dbname, **{k: v for k, v in server.items() if v}}
    cfg = settings.DATABASE_BOOTSTRAP
    info: dict[str, Any] = {"dbname": dbname, "user": cfg.get("USER") or "postgres"}
    if cfg.get("HOST"):
        info["host"] = cfg["HOST"]
    if cfg.get("PORT"):
        info["port"] = cfg["PORT"]
    if cfg.get("PASSWORD"):
        info["password"] = cfg["PASSWORD"]
    return info


def admin_connect(dbname: str = "postgres", *, server: dict[str, Any] | None = None) -> psycopg.Connection:
    return psycopg.connect(**_admin_conninfo(dbname, server), autocommit=True, connect_timeout=10)


def _ensure_role(cur: psycopg.Cursor, name: str, password: str, attributes: str) -> None:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
    verb = "ALTER" if cur.fetchone() else "CREATE"
    cur.execute(sql.SQL(f"{verb} ROLE {{}} {attributes}").format(sql.Identifier(name)))
    if password:
        cur.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))


def ensure_roles(*, server: dict[str, Any] | None = None) -> None:
    with admin_connect(server=server) as conn, conn.cursor() as cur:
        _ensure_role(
            cur,
            settings.DB_OWNER_ROLE,
            settings.DB_OWNER_PASSWORD,
            "LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOBYPASSRLS",
        )
        _ensure_role(
            cur,
            settings.DB_APP_ROLE,
            settings.DB_APP_PASSWORD,
            "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT",
        )
        _ensure_role(
            cur,
            settings.DB_DATA_ROLE,
            settings.DB_DATA_PASSWORD,
            "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT",
        )


LOGIN_ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT"
SAFE_SEARCH_PATH = "public, pg_temp"


def ensure_login_role(name: str, password: str, *, comment: str, server: dict[str, Any] | None = None) -> None:
    """Create (or update) one login role of a dedicated database; idempotent statement by statement."""
    with admin_connect(server=server) as conn, conn.cursor() as cur:
        _ensure_role(cur, name, password, LOGIN_ROLE_ATTRIBUTES)
        cur.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))


def drop_login_roles(*names: str, server: dict[str, Any] | None = None) -> None:
    with admin_connect(server=server) as conn:
        for name in names:
            if name:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def roles_commented(prefix: str) -> list[str]:
    """Login roles whose comment starts with `prefix` (the dedicated databases' roles, for cleanup)."""
    with admin_connect() as conn:
        rows = conn.execute(
            "SELECT r.rolname FROM pg_roles r JOIN pg_shdescription d ON d.objoid = r.oid "
            "AND d.classoid = 'pg_authid'::regclass WHERE starts_with(d.description, %s)",
            [prefix],
        ).fetchall()
    return [row[0] for row in rows]


def database_exists(name: str, *, server: dict[str, Any] | None = None) -> bool:
    with admin_connect(server=server) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def drop_database(name: str, *, server: dict[str, Any] | None = None) -> None:
    with admin_connect(server=server) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def ensure_database(name: str, *, recreate: bool = False, server: dict[str, Any] | None = None) -> None:
    """Create the control-plane database (or, on another `server`, its tenant-data or template
    database) owned by the owner role, with app grants."""
    ensure_roles(server=server)
    owner, _app = sql.Identifier(settings.DB_OWNER_ROLE), sql.Identifier(settings.DB_APP_ROLE)
    if recreate:
        drop_database(name, server=server)
    if not database_exists(name, server=server):
        with admin_connect(server=server) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), owner))
    grant_database(name, server=server)


def grant_database(name: str, *, server: dict[str, Any] | None = None) -> None:
    """Grants inside the control-plane database (and the template database). Every statement is
    idempotent and all of them run every time, so an interrupted run is finished by the next."""
    owner, app = sql.Identifier(settings.DB_OWNER_ROLE), sql.Identifier(settings.DB_APP_ROLE)
    data = sql.Identifier(settings.DB_DATA_ROLE)
    db = sql.Identifier(name)
    with admin_connect(server=server) as conn:
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
        conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(db, app))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, data))
        conn.execute(sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(db, owner))
        for role in (owner, app, data):
            conn.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = " + SAFE_SEARCH_PATH).format(role, db))
    with admin_connect(name, server=server) as conn:
        for statement in (
            "ALTER SCHEMA public OWNER TO {owner}",
            "REVOKE ALL ON SCHEMA public FROM PUBLIC",
            "GRANT USAGE ON SCHEMA public TO {app}",
            # The data-plane role sees public only for the workspace-lockout cache table (migration
            # saas_admin/0005); it has no privilege on any other table there.
            "GRANT USAGE ON SCHEMA public TO {data}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT USAGE, SELECT ON SEQUENCES TO {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT EXECUTE ON FUNCTIONS TO {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT USAGE ON SCHEMAS TO {app}",
        ):
            conn.execute(sql.SQL(statement).format(owner=owner, app=app, data=data))


def bootstrap() -> str:
    """Roles and the configured database; idempotent. Returns the database name."""
    name = settings.DATABASES["default"]["NAME"]
    ensure_database(name)
    return name


def conninfo(settings_dict: dict[str, Any]) -> dict[str, Any]:
    """psycopg keyword arguments for a Django DATABASES entry."""
    info: dict[str, Any] = {"dbname": settings_dict["NAME"], "user": settings_dict["USER"]}
    for key, name in (("HOST", "host"), ("PORT", "port"), ("PASSWORD", "password")):
        if settings_dict.get(key):
            info[name] = settings_dict[key]
    return info
