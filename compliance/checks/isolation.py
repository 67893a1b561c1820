"""Checks about tenant isolation and protecting data: RLS everywhere, runtime roles, no data outside
the placements, encryption, TLS.

They read PostgreSQL's catalogs directly, one query per database for every placement in it (all
pool and schema placements share the control-plane database; each dedicated database is one
connection), so their cost grows with databases, not with placements.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks as django_checks
from django.db import connections

from compliance.checks.registry import Outcome, check
from core.rls import COMMANDS, POLICY_PREFIX
from tenants import crypto
from tenants.databases import register_placement
from tenants.models import Placement
from tenants.placements import dedicated_roles, template_schema, tenant_app_labels

EXPECTED_POLICIES = sorted(POLICY_PREFIX + c for c in COMMANDS)

RLS_QUERY = """
SELECT s.nspname, t.tbl, c.oid IS NOT NULL, coalesce(c.relrowsecurity, false), coalesce(c.relforcerowsecurity, false),
       coalesce((SELECT array_agg(p.polname::text ORDER BY p.polname) FROM pg_policy p WHERE p.polrelid = c.oid),
                '{}'::text[])
  FROM unnest(%s::text[]) AS s(nspname)
 CROSS JOIN unnest(%s::text[]) AS t(tbl)
  LEFT JOIN pg_namespace n ON n.nspname = s.nspname
  LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.tbl AND c.relkind IN ('r', 'p')
"""


def data_plane_tables() -> list[str]:
    """Every table of the TENANT_APPS (the data plane), which must carry RLS in every placement."""
    tables = []
    for label in tenant_app_labels():
        for model in apps.get_app_config(label).get_models():
            if model._meta.managed and not model._meta.proxy:
                tables.append(model._meta.db_table)
    return sorted(set(tables))


def _rls_problems(alias: str, where: dict[str, str], tables: list[str]) -> tuple[list[dict[str, Any]], int]:
    """Problems in one database: `where` maps schema → placement label."""
    problems = []
    with connections[alias].cursor() as cursor:
        cursor.execute(RLS_QUERY, [list(where), tables])
        rows = cursor.fetchall()
    for schema, table, exists, enabled, forced, policies in rows:
        missing = [] if not exists else sorted(set(EXPECTED_POLICIES) - set(policies))
        issue = (
            "table missing"
            if not exists
            else "RLS not enabled"
            if not enabled
            else "RLS not forced"
            if not forced
            else f"policies missing: {', '.join(missing)}"
            if missing
            else ""
        )
        if issue:
            problems.append({"placement": where[schema], "schema": schema, "table": table, "problem": issue})
    return problems, len(rows)


def placements_by_database() -> tuple[dict[str, str], list[Placement]]:
    """Schemas in the control-plane database (schema → label) and the dedicated placements."""
    local = {template_schema(): "template schema", "public": "control-plane public copies"}
    dedicated = []
    for placement in Placement.objects.order_by("id"):
        if placement.database_alias == "default":
            local[placement.schema_name] = f"{placement.kind} {placement.schema_name} (placement {placement.pk})"
        else:
            dedicated.append(placement)
    return local, dedicated


@check("rls_forced")
def rls_forced() -> Outcome:
    """Proves every data-plane table has row-level security ENABLEd and FORCEd, with the four tenant
    policies (select, insert, update, delete), in every placement: every pool and own-schema placement,
    the template schema and the control-plane copies in the control-plane database, and every
    dedicated database. A missing table counts as a failure too.

    Evidence: placements and tables checked, and each (placement, table, problem) found."""
    tables = data_plane_tables()
    local, dedicated = placements_by_database()
    problems, checked = _rls_problems("default", local, tables)
    for placement in dedicated:
        label = f"database {placement.db_name} (placement {placement.pk})"
        try:
            alias = register_placement(placement)
            found, n = _rls_problems(alias, {placement.schema_name: label}, tables)
        except Exception as exc:  # one unreachable database is a problem to report, not the whole check's error
            found, n = [{"placement": label, "table": "*", "problem": f"unreachable: {exc}"[:300]}], 0
        problems += found
        checked += n
    return Outcome.judged(
        problems,
        f"RLS is enabled, forced and has its policies on {len(tables)} tables in {len(local) + len(dedicated)} places.",
        "{n} data-plane tables lack enforced row-level security: "
        + ", ".join(f"{p['table']} in {p['placement']}" for p in problems[:3])
        + (" …" if len(problems) > 3 else "."),
        tables=tables,
        places=len(local) + len(dedicated),
        table_checks=checked,
    )


ROLE_QUERY = """
SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relowner = r.oid AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'),
       (SELECT count(*) FROM pg_namespace n WHERE n.nspowner = r.oid)
  FROM pg_roles r WHERE r.rolname = ANY(%s::text[])
"""


def _role_problems(alias: str, roles: list[str], where: str) -> list[dict[str, Any]]:
    with connections[alias].cursor() as cursor:
        cursor.execute(ROLE_QUERY, [roles])
        rows = {row[0]: row for row in cursor.fetchall()}
    problems = []
    for role in roles:
        row = rows.get(role)
        if row is None:
            problems.append({"database": where, "role": role, "problem": "role does not exist"})
            continue
        _, superuser, bypass, createrole, createdb, tables, schemas = row
        for flag, bad in (("SUPERUSER", superuser), ("BYPASSRLS", bypass), ("CREATEROLE", createrole)):
            if bad:
                problems.append({"database": where, "role": role, "problem": f"has {flag}"})
        if createdb:
            problems.append({"database": where, "role": role, "problem": "has CREATEDB"})
        if tables or schemas:
            problems.append({"database": where, "role": role, "problem": f"owns {tables} relations, {schemas} schemas"})
    return problems


@check("runtime_roles")
def runtime_roles() -> Outcome:
    """Proves the roles requests and tasks run as — the control plane's app role, the data-plane role and
    every dedicated database's app role — are NOSUPERUSER NOBYPASSRLS (and cannot create roles or
    databases), and own no table, sequence, view or schema in the database they serve.

    Evidence: the roles and databases checked and each problem."""
    control_roles = [settings.DB_APP_ROLE, settings.DB_DATA_ROLE]
    problems = _role_problems("default", control_roles, "control plane")
    checked = [{"database": "control plane", "roles": control_roles}]
    for placement in Placement.objects.filter(kind=Placement.Kind.DATABASE).order_by("id"):
        app_role = dedicated_roles(placement.db_name)[1]
        try:
            app_role = crypto.decrypt_json(placement.credentials_encrypted).get("app_user", app_role)
            alias = register_placement(placement)
            problems += _role_problems(alias, [app_role, settings.DB_APP_ROLE], placement.db_name)
        except Exception as exc:  # an unreachable database is reported, not raised
            problems.append({"database": placement.db_name, "role": app_role, "problem": f"unreachable: {exc}"[:300]})
        checked.append({"database": placement.db_name, "roles": [app_role]})
    return Outcome.judged(
        problems,
        f"Runtime roles in {len(checked)} databases are NOSUPERUSER NOBYPASSRLS and own nothing.",
        "{n} runtime role problems: "
        + "; ".join(f"{p['role']} {p['problem']} ({p['database']})" for p in problems[:3])
        + ".",
        checked=checked,
    )


STRAY_QUERY = """
SELECT n.nspname, count(c.oid), greatest(sum(greatest(c.reltuples, 0)), 0)::bigint,
       coalesce(obj_description(n.oid, 'pg_namespace'), ''),
       has_schema_privilege(%s, n.oid, 'USAGE') AND bool_or(has_table_privilege(%s, c.oid, 'SELECT'))
  FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
   AND NOT n.nspname = ANY(%s::text[])
 GROUP BY n.oid, n.nspname ORDER BY n.nspname
"""
# Schemas the control plane keeps beside its placements: its own tables (and the data plane's
# public copies), the template, and a move's change-tracking table (keys only, no row data).
KNOWN_SCHEMAS = ("public", "tenancy_move")


def _stray_schemas(alias: str, where: str, known: set[str]) -> list[dict[str, Any]]:
    with connections[alias].cursor() as cursor:
        cursor.execute(STRAY_QUERY, [settings.DB_APP_ROLE, settings.DB_APP_ROLE, sorted(known)])
        rows = cursor.fetchall()
    return [
        {"database": where, "schema": schema, "tables": tables, "rows_estimate": rows_estimate, "comment": comment,
         "app_role_reads": bool(readable)}
        for schema, tables, rows_estimate, comment, readable in rows
    ]  # fmt: skip


@check("stray_data")
def stray_data() -> Outcome:
    """Proves every table in the databases that hold pools and own schemas — the control-plane database
    and each other server's tenant-data database — lies in a schema the control plane knows: a
    placement's, the template's, or its own (public, move tracking). Data anywhere else is outside
    row-level security, erasure, exports, retention and moves: e.g. the django-tenants schemas an import
    copied from (docs/lifecycle.md), a schema whose placement row is gone, or one made by hand.

    Evidence: the databases checked and each schema found outside, with its tables, estimated rows,
    comment and whether the control plane's app role may read it."""
    by_alias: dict[str, set[str]] = {"default": set()}
    first_on: dict[str, Placement] = {}
    for placement in Placement.objects.exclude(kind=Placement.Kind.DATABASE).order_by("id"):
        by_alias.setdefault(placement.database_alias, set()).add(placement.schema_name)
        first_on.setdefault(placement.database_alias, placement)
    problems: list[dict[str, Any]] = []
    checked = []
    for alias_name, schemas in sorted(by_alias.items()):
        known = schemas | {template_schema(), *KNOWN_SCHEMAS}
        where = "control plane" if alias_name == "default" else f"tenant data ({alias_name})"
        try:
            alias = alias_name if alias_name == "default" else register_placement(first_on[alias_name])
            problems += _stray_schemas(alias, where, known)
        except Exception as exc:  # an unreachable server is reported, not raised
            problems.append({"database": where, "schema": "*", "problem": f"unreachable: {exc}"[:300]})
        checked.append({"database": where, "known_schemas": len(known)})
    return Outcome.judged(
        problems,
        f"Every table in the {len(checked)} {'database' if len(checked) == 1 else 'databases'} of pools and schemas"
        " lies in a placement's or the control plane's schema.",
        "{n} schemas hold data outside every placement: "
        + ", ".join(f"{p['schema']} ({p['database']})" for p in problems[:3])
        + (" …" if len(problems) > 3 else ".")
        + " Drop them once nothing needs them, or move their data into a tenant.",
        checked=checked,
    )


@check("encryption_at_rest")
def encryption_at_rest() -> Outcome:
    """Proves every dedicated placement's database credentials are stored encrypted (a Fernet token that the
    current key decrypts, never plain JSON) and that, outside DEBUG, the encryption key is set on its
    own (FIELD_ENCRYPTION_KEY) rather than derived from SECRET_KEY.

    Evidence: placements checked, whether the key is dedicated, and each problem."""
    problems: list[dict[str, Any]] = []
    dedicated_key = bool(crypto.key_list(settings.FIELD_ENCRYPTION_KEY))
    if not dedicated_key and not settings.DEBUG:
        problems.append({"what": "FIELD_ENCRYPTION_KEY", "problem": "not set: the key is derived from SECRET_KEY"})
    placements = Placement.objects.filter(kind=Placement.Kind.DATABASE).order_by("id")
    for placement in placements:
        token = placement.credentials_encrypted
        if not token:
            problems.append({"what": f"placement {placement.pk}", "problem": "no stored credentials"})
            continue
        if token.lstrip().startswith("{"):
            problems.append({"what": f"placement {placement.pk}", "problem": "credentials stored as plain JSON"})
            continue
        try:
            crypto.decrypt_json(token)
        except Exception:  # InvalidToken or bad JSON: either way not readable with the current key
            problems.append({"what": f"placement {placement.pk}", "problem": "the current key cannot decrypt it"})
    return Outcome.judged(
        problems,
        f"Credentials of {placements.count()} dedicated placements are encrypted"
        + (" with a dedicated key." if dedicated_key else " (development key derived from SECRET_KEY, DEBUG on)."),
        "{n} problems with encryption at rest: "
        + "; ".join(f"{p['what']}: {p['problem']}" for p in problems[:3])
        + ".",
        dedicated_key=dedicated_key,
        debug=settings.DEBUG,
    )


HTTPS_SETTINGS = ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE")


@check("transport_security")
def transport_security() -> Outcome:
    """Proves traffic is encrypted in transit: every database connection configured with an sslmode that
    requires TLS really uses it (pg_stat_ssl of its own session), the HTTPS settings (SSL redirect,
    secure cookies, HSTS) are on, and Django's deployment checks report no warning.

    Evidence: per alias the configured sslmode and whether the session is encrypted; the settings;
    the deployment check ids found."""
    problems: list[dict[str, Any]] = []
    sessions = []
    for alias in ("default", "owner"):
        mode = (connections.settings[alias].get("OPTIONS") or {}).get("sslmode", "")
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            row = cursor.fetchone()
        encrypted = bool(row and row[0])
        sessions.append({"alias": alias, "sslmode": mode, "ssl": encrypted, "version": row[1] if row else None})
        if mode in ("require", "verify-ca", "verify-full") and not encrypted:
            problems.append(
                {"what": f"database alias {alias}", "problem": f"sslmode={mode} but the session is not TLS"}
            )
    values: dict[str, Any] = {name: bool(getattr(settings, name, False)) for name in HTTPS_SETTINGS}
    values["SECURE_HSTS_SECONDS"] = int(getattr(settings, "SECURE_HSTS_SECONDS", 0) or 0)
    for name in HTTPS_SETTINGS:
        if not values[name]:
            problems.append({"what": name, "problem": "off"})
    if values["SECURE_HSTS_SECONDS"] <= 0:
        problems.append({"what": "SECURE_HSTS_SECONDS", "problem": "HSTS is off"})
    deploy = [
        m.id for m in django_checks.run_checks(include_deployment_checks=True) if m.level >= django_checks.WARNING
    ]
    for message_id in deploy:
        problems.append({"what": "check --deploy", "problem": str(message_id)})
    return Outcome.judged(
        problems,
        "TLS is used where configured, HTTPS settings are on and check --deploy is clean.",
        "{n} transport-security problems: " + "; ".join(f"{p['what']}: {p['problem']}" for p in problems[:3]) + ".",
        sessions=sessions,
        settings=values,
        deploy_check_ids=sorted({str(d) for d in deploy}),
    )
