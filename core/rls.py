"""Row-level security for data-plane tables, as a reusable migration operation.

Every TENANT_APPS table has a non-null `tenant_id` and, in every placement
(pool schema, own schema, dedicated database, and the empty copies in the
control-plane `public` schema), RLS ENABLEd and FORCEd with one policy per
command. The predicate compares with the transaction-local GUC
`app.current_tenant_id` through a STABLE expression, so an index on tenant_id
is used with it as the index condition (computed once per scan), and NULLIF
turns a missing or reset (empty) setting into NULL, which matches no row:
fail closed, no error.

Usage in a migration, after the CreateModel:

    from core.rls import EnableTenantRLS
    operations = [migrations.CreateModel(name="Thing", ...), EnableTenantRLS("Thing")]
"""

from __future__ import annotations

from django.db import migrations
from psycopg import sql

GUC = "app.current_tenant_id"
# A STABLE expression (what a STABLE SQL function would be inlined to): as an index condition it
# is computed once per scan, not per row. Measured (bench/bench_tenancy.py, 25 of 6,300 rows): the
# `(SELECT …)` InitPlan form costs ~16% per query against an explicit WHERE, this form ~5%.
TENANT_PREDICATE = sql.SQL("tenant_id = NULLIF(current_setting({guc}, true), '')::uuid").format(guc=sql.Literal(GUC))
POLICY_PREFIX = "tenant_isolation_"
COMMANDS = ("select", "insert", "update", "delete")


def enable_statements(table: str) -> list[str]:
    t = sql.Identifier(table)
    p = TENANT_PREDICATE
    statements = [
        sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(t),
        sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(t),
        sql.SQL("CREATE POLICY {} ON {} FOR SELECT USING ({})").format(sql.Identifier(POLICY_PREFIX + "select"), t, p),
        sql.SQL("CREATE POLICY {} ON {} FOR INSERT WITH CHECK ({})").format(
            sql.Identifier(POLICY_PREFIX + "insert"), t, p
        ),
        sql.SQL("CREATE POLICY {} ON {} FOR UPDATE USING ({}) WITH CHECK ({})").format(
            sql.Identifier(POLICY_PREFIX + "update"), t, p, p
        ),
        sql.SQL("CREATE POLICY {} ON {} FOR DELETE USING ({})").format(sql.Identifier(POLICY_PREFIX + "delete"), t, p),
    ]
    return [s.as_string(None) for s in statements]


def disable_statements(table: str) -> list[str]:
    t = sql.Identifier(table)
    statements = [
        sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(POLICY_PREFIX + c), t) for c in COMMANDS
    ]
    statements += [
        sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(t),
        sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(t),
    ]
    return [s.as_string(None) for s in statements]


class EnableTenantRLS(migrations.operations.base.Operation):
    """Enable + FORCE RLS with the tenant policies on a model's table (tables resolved via search_path)."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def deconstruct(self):
        return (self.__class__.__qualname__, [self.model_name], {})

    def state_forwards(self, app_label, state) -> None:
        pass

    def _run(self, app_label, schema_editor, state, statements_for) -> None:
        model = state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        for statement in statements_for(model._meta.db_table):
            schema_editor.execute(statement)

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        self._run(app_label, schema_editor, to_state, enable_statements)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        self._run(app_label, schema_editor, from_state, disable_statements)

    def describe(self) -> str:
        return f"Enable and force tenant row-level security on {self.model_name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"rls_{self.model_name.lower()}"
