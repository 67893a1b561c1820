from django.apps import AppConfig


class EventsConfig(AppConfig):
    """The event store: the control plane's log, tenant logs (events.tenantlog), projections, the viewer."""

    name = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # In ready(): the models these modules import are loaded only now.
        from core import eventlog
        from events.services import control_event_append

        # Layers below the event store (the job engine) append through core.eventlog.
        eventlog.provide(control_event_append)
