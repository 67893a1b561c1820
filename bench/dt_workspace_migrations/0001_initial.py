"""The `workspace` app as a django-tenants project has it before adopting the control plane:
the same members, accounts and sessions, but no `tenant_id` column and no row-level security
(django-tenants separates tenants by schema only), and no unique email per tenant yet.

Used as `MIGRATION_MODULES={"workspace": "bench.dt_workspace_migrations"}` by the django-tenants
project of bench/dt_settings.py when a test builds a deployment to import
(tenants/tests/test_django_tenants_import.py).
"""

from decimal import Decimal

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Member",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=200)),
                ("email", models.EmailField(max_length=254)),
                ("password", models.CharField(blank=True, max_length=128)),
                ("is_admin", models.BooleanField(default=False)),
                ("is_active", models.BooleanField(default=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("invited_at", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.CreateModel(
            name="Account",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=200)),
                ("currency", models.CharField(default="EUR", max_length=3)),
                ("balance", models.DecimalField(decimal_places=2, default=Decimal("0.00"), max_digits=18)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.CreateModel(
            name="MemberSession",
            fields=[
                ("session_key", models.CharField(max_length=40, primary_key=True, serialize=False)),
                ("session_data", models.TextField()),
                ("expire_date", models.DateTimeField(db_index=True)),
                ("member_id", models.BigIntegerField(blank=True, null=True)),
            ],
        ),
    ]
