from django.apps import AppConfig


class SagasConfig(AppConfig):
    """Saga orchestrator (Saga, SagaStep) over Celery; part of the events app's domain."""

    name = "events.sagas"
    label = "sagas"
    default_auto_field = "django.db.models.BigAutoField"
