from django.apps import AppConfig


class UsageConfig(AppConfig):
    """Per-tenant usage rollups, quota warnings, metering records and /metrics (docs/usage.md)."""

    name = "usage"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # In ready(): these modules import models, loaded only now; importing registers the job
        # kinds and the overview panel.
        from usage import jobs, panels, personal_data  # noqa: F401  (personal_data: declares its fields)
