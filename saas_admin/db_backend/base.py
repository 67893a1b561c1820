"""PostgreSQL backend for the control plane.

The only difference from Django's today: `flush` (used by `manage.py flush`
and by transactional tests between cases) runs through the `owner` alias,
because the app role may not TRUNCATE.
"""

from __future__ import annotations

from django.db.backends.postgresql import base, operations

from saas_admin.routers import is_owner_alias


class DatabaseOperations(operations.DatabaseOperations):
    def execute_sql_flush(self, sql_list: list[str]) -> None:
        if is_owner_alias(self.connection.alias):
            return super().execute_sql_flush(sql_list)
        import psycopg
        from django.db import connections

        from saas_admin.dbroles import conninfo

        owner_alias = "owner" if self.connection.alias == "default" else f"{self.connection.alias}__owner"
        # A private psycopg connection: the test runner fences off Django aliases a test did not ask for.
        with psycopg.connect(**conninfo(connections.settings[owner_alias])) as owner, owner.cursor() as cursor:
            for statement in sql_list:
                cursor.execute(statement)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
