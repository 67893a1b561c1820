from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """Data-subject rights: the record of processing, access requests, erasure, holds (docs/privacy.md)."""

    name = "privacy"
    label = "privacy"
    verbose_name = "Data-subject rights"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # In ready(): these modules import models, loaded only now.
        from privacy import (
            erasure,  # noqa: F401  (registers the erasure saga)
            export,  # noqa: F401  (registers the access-request job kind)
            panels,  # noqa: F401  (registers the overview tile)
            personal_data,  # noqa: F401  (declares its own personal fields)
            retention,  # noqa: F401  (registers the retention job kind)
        )
