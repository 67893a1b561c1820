"""The app role keeps only the grants it uses; the data-plane role gets the workspace-lockout cache.

Default privileges give the app role DML on every table the owner creates. It never writes the
migration history and never deletes an operator (they are deactivated), so those grants go. The data-plane role of
tenant hosts gets exactly one table in `public`: the cache of workspace sign-in counters.
"""

from django.conf import settings
from django.db import migrations
from psycopg import sql

REVOKES = [
    ("django_migrations", "INSERT, UPDATE, DELETE, TRUNCATE"),
    ("auth_user", "DELETE, TRUNCATE"),
    ("tenants_placement", "TRUNCATE"),
]


def apply(apps, schema_editor):
    app, data = sql.Identifier(settings.DB_APP_ROLE), sql.Identifier(settings.DB_DATA_ROLE)
    with schema_editor.connection.cursor() as cursor:
        for table, privileges in REVOKES:
            cursor.execute(sql.SQL(f"REVOKE {privileges} ON {{}} FROM {{}}").format(sql.Identifier(table), app))
        cursor.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_limits_cache TO {}").format(data)
        )


def unapply(apps, schema_editor):
    app, data = sql.Identifier(settings.DB_APP_ROLE), sql.Identifier(settings.DB_DATA_ROLE)
    with schema_editor.connection.cursor() as cursor:
        for table, _ in REVOKES:
            cursor.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(sql.Identifier(table), app))
        cursor.execute(sql.SQL("REVOKE ALL ON tenant_limits_cache FROM {}").format(data))


class Migration(migrations.Migration):
    dependencies = [
        ("saas_admin", "0004_api_token_scope"),
        ("tenants", "0002_domain_verification_token"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(apply, unapply)]
