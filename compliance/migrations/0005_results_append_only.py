"""Compliance results and framework snapshots are append-only for the app role: history is evidence."""

from django.conf import settings
from django.db import migrations
from psycopg import sql

TABLES = ("compliance_result", "compliance_frameworksnapshot")


def _revoke(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(
                    sql.Identifier(table), sql.Identifier(settings.DB_APP_ROLE)
                )
            )


class Migration(migrations.Migration):
    dependencies = [("compliance", "0004_controls_results")]

    operations = [migrations.RunPython(_revoke, migrations.RunPython.noop)]
