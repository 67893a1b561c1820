"""Create the database roles and database, and the grants between them.

Two roles, never the bootstrap superuser at run time:
- owner (`DB_OWNER_ROLE`): owns the database, schemas and tables; runs
  migrations and provisioning DDL; CREATEDB for dedicated tenant databases.
- app (`DB_APP_ROLE`): what web requests and Celery tasks log in as.
  NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE, owns nothing, and gets only
  DML on tables the owner creates (default privileges), so RLS always applies.

Every identifier goes through psycopg.sql.Identifier; every value is a parameter.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.conf import settings
from psycopg import sql


def _admin_conninfo(dbname: str) -> dict[str, Any]:
    cfg = settings.DATABASE_BOOTSTRAP
    info: dict[str, Any] = {"dbname": dbname, "user": cfg.get("USER") or "postgres"}
    if cfg.get("HOST"):
        info["host"] = cfg["HOST"]
    if cfg.get("PORT"):
        info["port"] = cfg["PORT"]
    if cfg.get("PASSWORD"):
        info["password"] = cfg["PASSWORD"]
    return info


def admin_connect(dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(**_admin_conninfo(dbname), autocommit=True)


def _ensure_role(cur: psycopg.Cursor, name: str, password: str, attributes: str) -> None:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
    verb = "ALTER" if cur.fetchone() else "CREATE"
    cur.execute(sql.SQL(f"{verb} ROLE {{}} {attributes}").format(sql.Identifier(name)))
    if password:
        cur.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))


def ensure_roles() -> None:
    with admin_connect() as conn, conn.cursor() as cur:
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


def database_exists(name: str) -> bool:
    with admin_connect() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def drop_database(name: str) -> None:
    with admin_connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def ensure_database(name: str, *, recreate: bool = False) -> None:
    """Create the control-plane database owned by the owner role, with app grants."""
    ensure_roles()
    owner, _app = sql.Identifier(settings.DB_OWNER_ROLE), sql.Identifier(settings.DB_APP_ROLE)
    if recreate:
        drop_database(name)
    if not database_exists(name):
        with admin_connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), owner))
    grant_database(name)


def grant_database(name: str) -> None:
    """Grants inside one database (control plane or a dedicated tenant database)."""
    owner, app = sql.Identifier(settings.DB_OWNER_ROLE), sql.Identifier(settings.DB_APP_ROLE)
    db = sql.Identifier(name)
    with admin_connect() as conn:
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
        conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(db, app))
        conn.execute(sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(db, owner))
    with admin_connect(name) as conn:
        for statement in (
            "ALTER SCHEMA public OWNER TO {owner}",
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            "GRANT USAGE ON SCHEMA public TO {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT USAGE, SELECT ON SEQUENCES TO {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT EXECUTE ON FUNCTIONS TO {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT USAGE ON SCHEMAS TO {app}",
        ):
            conn.execute(sql.SQL(statement).format(owner=owner, app=app))


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
