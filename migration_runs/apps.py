from django.apps import AppConfig


class MigrationRunsConfig(AppConfig):
    """Cross-tenant migration runs (MigrationRun, MigrationJob): see docs/migration_runs.md."""

    name = "migration_runs"
    label = "migration_runs"
    verbose_name = "Cross-tenant migrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from migration_runs import services  # noqa: F401  (registers the apply and verify job kinds)
