from django.apps import AppConfig


class MigrationRunsConfig(AppConfig):
    """Cross-tenant migration runs (MigrationRun, MigrationJob): see docs/migrations.md."""

    name = "tenants.migration_runs"
    label = "migration_runs"
    verbose_name = "Cross-tenant migrations"
    default_auto_field = "django.db.models.BigAutoField"
