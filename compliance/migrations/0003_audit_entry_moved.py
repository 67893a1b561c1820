"""AuditEntry now belongs to the `audit` app (audit/migrations/0001); the table is unchanged."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0002_audit_indexes"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="AuditEntry")], database_operations=[]),
    ]
