from django.apps import AppConfig


class SagasConfig(AppConfig):
    """Persistent sagas (Saga, SagaStep): ordered, compensated steps run by the job engine (see docs/sagas.md)."""

    name = "sagas"
    label = "sagas"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from sagas import services  # noqa: F401  (registers the saga.step and saga.compensate job kinds)
