from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The append-only audit trail of operator actions (see docs/architecture.md)."""

    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # In ready(): these modules register with the overview and the personal-data registry.
        from audit import (
            panels,  # noqa: F401  (registers the overview panel)
            personal_data,  # noqa: F401  (declares its personal fields)
        )
