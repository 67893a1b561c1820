"""PostgreSQL backend for the control plane.

The only difference from Django's: `flush` (used by `manage.py flush` and by
transactional tests between cases) runs through the `owner` alias, because
the app role may not TRUNCATE, over the tables the owner alias migrates.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.backends.postgresql import base, introspection, operations

from core.routers import is_owner_alias

# Append-only tables (the event logs) carry a statement trigger that refuses TRUNCATE for
# everyone. Only their owner may lift it, and only inside the flush's own transaction:
# the triggers are disabled, the tables emptied, the triggers enabled, then one commit.
_TRUNCATE_GUARDS = """
    SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(t.tgname)
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT t.tgisinternal AND (t.tgtype & 32) <> 0 AND t.tgenabled <> 'D'
       AND n.nspname = ANY (current_schemas(false))
"""


def _flush_with_truncate_guards_lifted(cursor, sql_list: Iterable[str]) -> None:
    cursor.execute(_TRUNCATE_GUARDS)
    guards = cursor.fetchall()
    for table, trigger in guards:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")  # both quote_ident'ed above
    for statement in sql_list:
        cursor.execute(statement)
    for table, trigger in guards:
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")


class DatabaseOperations(operations.DatabaseOperations):
    def execute_sql_flush(self, sql_list: Iterable[str]) -> None:
        if is_owner_alias(self.connection.alias):
            from django.db import transaction  # the backend module loads while django.db builds connections

            with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
                _flush_with_truncate_guards_lifted(cursor, sql_list)
            return None
        # At call time: this backend module loads while django.db builds its connections.
        import psycopg
        from django.db import connections

        from core.dbroles import conninfo

        owner_alias = owner_alias_for(self.connection.alias)
        # A private psycopg connection: the test runner fences off Django aliases a test did not ask for.
        with psycopg.connect(**conninfo(connections.settings[owner_alias])) as owner, owner.cursor() as cursor:
            _flush_with_truncate_guards_lifted(cursor, sql_list)


def owner_alias_for(alias: str) -> str:
    if is_owner_alias(alias):
        return alias
    # `data` (tenant hosts' role) is the control-plane database under another role.
    return "owner" if alias in ("default", "data") else f"{alias}__owner"


class DatabaseIntrospection(introspection.DatabaseIntrospection):
    def get_migratable_models(self):
        """The app role's alias migrates nothing, yet it sees the tables its owner alias migrates.

        Without this, `flush` on `default` (transactional tests) would find no tables and clear nothing.
        """
        # At call time: this backend module loads while django.db builds its connections.
        from django.apps import apps
        from django.db import router

        alias = owner_alias_for(self.connection.alias)
        return (
            model for app_config in apps.get_app_configs() for model in router.get_migratable_models(app_config, alias)
        )


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
    introspection_class = DatabaseIntrospection
