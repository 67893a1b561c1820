from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    """Controls, framework library, automated checks and reports: see docs/compliance.md."""

    name = "compliance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # In ready(): the checks and the job kind import models, loaded only now.
        from compliance import (  # noqa: F401  (registers the checks and the job kinds; declares personal-looking fields)
            checks,
            exports,
            personal_data,
            services,
        )
