"""Catalog audit: every data-plane table in every placement is RLS-protected; the app role can't escape it."""

from __future__ import annotations

import psycopg
import pytest
from django.apps import apps
from django.conf import settings
from django.db import connections

from core import dbroles, rls
from tenants import placements
from tests.support.tenancy import all_tenants

pytestmark = pytest.mark.django_db(databases="__all__")

# Tables with a `tenant_id` column. Data-plane tenant_id is NOT NULL everywhere; control-plane tables
# that merely *refer* to a tenant (Domain's foreign key to tenants_tenant, the control-plane event
# log's nullable tenant_id) are about tenants, not a tenant's data, and are left out — unless the
# table belongs to TENANT_APPS, which is always audited.
DATA_PLANE_TABLES = """
    SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE a.attname = 'tenant_id' AND NOT a.attisdropped
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND (c.relname = ANY (%(tenant_tables)s) OR (
           a.attnotnull AND NOT EXISTS (
               SELECT 1 FROM pg_constraint f
                WHERE f.conrelid = c.oid AND f.contype = 'f' AND a.attnum = ANY (f.conkey)
                  AND f.confrelid = to_regclass('public.tenants_tenant'))))
     ORDER BY 1, 2
"""
POLICIES = "SELECT cmd, qual, with_check FROM pg_policies WHERE schemaname = %s AND tablename = %s"


def audit(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Return (schema, table) of every table with tenant_id; fail on any that is not fully protected."""
    tables = conn.execute(DATA_PLANE_TABLES, {"tenant_tables": sorted(tenant_tables())}).fetchall()
    for schema, table, enabled, forced in tables:
        where = f"{conn.info.dbname}: {schema}.{table}"
        assert enabled, f"RLS is not enabled on {where}"
        assert forced, f"RLS is not forced on {where}"
        policies = {cmd: (qual, check) for cmd, qual, check in conn.execute(POLICIES, [schema, table])}
        for cmd in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            qual, check = policies.get(cmd) or policies.get("ALL") or (None, None)
            if cmd in ("SELECT", "UPDATE", "DELETE"):
                assert qual and "app.current_tenant_id" in qual, f"no {cmd} policy on {where}"
            if cmd in ("INSERT", "UPDATE"):
                assert check and "app.current_tenant_id" in check, f"no WITH CHECK for {cmd} on {where}"
    return [(schema, table) for schema, table, *_ in tables]


def tenant_tables() -> set[str]:
    labels = {label.rsplit(".", 1)[-1] for label in settings.TENANT_APPS}
    return {m._meta.db_table for m in apps.get_models() if m._meta.app_label in labels}


def test_every_tenant_app_model_has_a_non_null_tenant_id():
    labels = {label.rsplit(".", 1)[-1] for label in settings.TENANT_APPS}
    models = [m for m in apps.get_models() if m._meta.app_label in labels]
    assert models
    for model in models:
        field = model._meta.get_field("tenant_id")
        assert not field.null, model


def test_every_table_with_tenant_id_is_protected_in_every_placement(tenant_world):
    owner = dbroles.conninfo(connections.settings["owner"])
    with psycopg.connect(**owner) as conn:
        found = audit(conn)
    schemas_with_all_tables = {s for s in {s for s, _ in found} if {t for s2, t in found if s2 == s} >= tenant_tables()}
    expected = {"public", placements.template_schema()} | {
        t.placement.schema_name for t in all_tenants(tenant_world) if not t.placement.is_dedicated
    }
    assert expected <= schemas_with_all_tables
    for db_name in [placements.template_database()] + [t.placement.db_name for t in tenant_world["dedicated"]]:
        # Dedicated databases admit only their own roles: inspected as the bootstrap user.
        with dbroles.admin_connect(db_name) as conn:
            assert {t for _, t in audit(conn)} >= tenant_tables(), db_name


def test_the_audit_notices_a_table_without_forced_rls(tenant_world):
    # The audit itself must be able to fail: an unprotected table in a throwaway transaction.
    with psycopg.connect(**dbroles.conninfo(connections.settings["owner"])) as conn:
        conn.execute("CREATE TABLE public.audit_probe (id int, tenant_id uuid NOT NULL)")
        with pytest.raises(AssertionError, match="not enabled"):
            audit(conn)
        for statement in rls.enable_statements("audit_probe"):
            conn.execute(statement)
        assert ("public", "audit_probe") in audit(conn)
        conn.rollback()


def test_the_app_role_cannot_bypass_rls_and_owns_no_table(tenant_world):
    from tenants.crypto import decrypt_json

    databases = [(settings.DATABASES["owner"]["NAME"], settings.DB_APP_ROLE)] + [
        (t.placement.db_name, decrypt_json(t.placement.credentials_encrypted)["app_user"])
        for t in tenant_world["dedicated"]
    ]
    for db_name, app in databases:
        with dbroles.admin_connect(db_name) as conn:
            row = conn.execute(
                "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s", [app]
            ).fetchone()
            assert row == (False, False, False, False)
            owned = conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = %s", [app]
            ).fetchone()[0]
            assert owned == 0, db_name


def test_tenant_connections_run_as_the_app_role_and_ddl_is_refused(tenant_world):
    from django.db import DatabaseError, transaction

    from tenants.context import tenant_context
    from tenants.crypto import decrypt_json

    for tenant in all_tenants(tenant_world):
        with tenant_context(tenant) as alias, connections[alias].cursor() as cursor:
            cursor.execute("SELECT current_user")
            expected = (
                decrypt_json(tenant.placement.credentials_encrypted)["app_user"]
                if tenant.placement.is_dedicated
                else settings.DB_APP_ROLE
            )
            assert cursor.fetchone()[0] == expected
            with pytest.raises(DatabaseError), transaction.atomic(using=alias):
                cursor.execute("ALTER TABLE workspace_member NO FORCE ROW LEVEL SECURITY")


def test_the_app_role_may_use_every_placement_schema(tenant_world):
    # New schemas get USAGE for the app role through dbroles' default privileges.
    with connections["default"].cursor() as cursor:
        for tenant in all_tenants(tenant_world):
            if tenant.placement.is_dedicated:
                continue
            cursor.execute("SELECT has_schema_privilege(current_user, %s, 'USAGE')", [tenant.placement.schema_name])
            assert cursor.fetchone()[0] is True
            cursor.execute("SELECT has_schema_privilege(current_user, %s, 'CREATE')", [tenant.placement.schema_name])
            assert cursor.fetchone()[0] is False
