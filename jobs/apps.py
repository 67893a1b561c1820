from django.apps import AppConfig


class JobsConfig(AppConfig):
    """The one engine for long-running work (see jobs/services.py and docs/jobs.md)."""

    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"
