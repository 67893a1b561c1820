"""The audit trail moves from the compliance app to its own app: state only, the table stays as it is."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("compliance", "0002_audit_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEntry",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("occurred_at", models.DateTimeField(db_index=True)),
                        ("actor_label", models.CharField(help_text="Username at the time, kept if the user is deleted.", max_length=254)),
                        ("action", models.CharField(db_index=True, help_text="An audit.actions.AuditAction value.", max_length=100)),
                        ("target_type", models.CharField(blank=True, max_length=100)),
                        ("target_id", models.CharField(blank=True, max_length=100)),
                        ("summary", models.CharField(blank=True, max_length=500)),
                        ("ip_address", models.GenericIPAddressField(blank=True, null=True)),
                        ("user_agent", models.CharField(blank=True, max_length=300)),
                        ("details", models.JSONField(blank=True, default=dict)),
                        ("actor", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "ordering": ["-occurred_at", "-id"],
                        "db_table": "compliance_auditentry",
                        "indexes": [
                            models.Index(fields=["target_type", "target_id"], name="compliance__target__09d8bf_idx"),
                            models.Index(fields=["-occurred_at", "-id"], name="audit_keyset_idx"),
                            models.Index(fields=["actor_label", "-occurred_at"], name="audit_actor_idx"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
