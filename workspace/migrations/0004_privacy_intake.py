import core.tenancy
from core.rls import EnableTenantRLS
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("workspace", "0003_member_invitations")]

    operations = [
        migrations.CreateModel(
            name="PrivacyIntake",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("tenant_id", models.UUIDField(default=core.tenancy.current_tenant_id, editable=False)),
                ("kind", models.CharField(default="access", max_length=10)),
                ("email", models.EmailField(blank=True, help_text="Emptied once the control plane has taken the request.", max_length=254)),
                ("requested_by_member", models.BigIntegerField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("picked_up_at", models.DateTimeField(blank=True, null=True)),
                ("request_id", models.UUIDField(blank=True, null=True)),
                ("status", models.CharField(default="waiting", max_length=20)),
                ("due_at", models.DateTimeField(blank=True, null=True)),
                ("download_url", models.CharField(blank=True, help_text="Single-use; shown to the admins.", max_length=300)),
                ("error", models.CharField(blank=True, max_length=300)),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "indexes": [models.Index(fields=["tenant_id", "picked_up_at"], name="privacyintake_pending")],
            },
        ),
        EnableTenantRLS("PrivacyIntake"),
    ]
