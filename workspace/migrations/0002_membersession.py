import core.tenancy
from core.rls import EnableTenantRLS
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("workspace", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="MemberSession",
            fields=[
                ("session_key", models.CharField(max_length=40, primary_key=True, serialize=False, verbose_name="session key")),
                ("session_data", models.TextField(verbose_name="session data")),
                ("expire_date", models.DateTimeField(db_index=True, verbose_name="expire date")),
                ("tenant_id", models.UUIDField(default=core.tenancy.current_tenant_id, editable=False)),
            ],
            options={
                "verbose_name": "session",
                "verbose_name_plural": "sessions",
                "abstract": False,
                "indexes": [models.Index(fields=["tenant_id", "expire_date"], name="membersession_tenant_expiry")],
            },
        ),
        EnableTenantRLS("MemberSession"),
    ]
