"""The tenant log's insert trigger takes a move's copied chain as given, when the table's owner says so
in its transaction (events/ddl.py, TRUSTED_CHAIN): copying a tenant's events into a pool no longer
recomputes the chain row by row; the move verifies it in one query instead. Replaces the function
only: the trigger, the table and its rows are unchanged."""

from django.db import migrations


def _replace(apps, schema_editor, *, trusted: bool) -> None:
    from events import ddl

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(ddl.insert_function_statement("tenantlog_event", tenant_scoped=True, trusted_chain=trusted))


class Migration(migrations.Migration):
    dependencies = [
        ("tenantlog", "0002_viewer_filter_indexes"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, editor: _replace(apps, editor, trusted=True),
            lambda apps, editor: _replace(apps, editor, trusted=False),
        ),
    ]
