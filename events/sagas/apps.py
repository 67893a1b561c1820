from importlib import import_module

from django.apps import AppConfig
from django.conf import settings


class SagasConfig(AppConfig):
    """Saga orchestrator (Saga, SagaStep) over Celery; part of the events app's domain."""

    name = "events.sagas"
    label = "sagas"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register every saga type so web processes and workers agree on the definitions.
        for module in getattr(settings, "SAGA_DEFINITION_MODULES", []):
            import_module(module)
