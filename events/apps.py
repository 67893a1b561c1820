from importlib import import_module

from django.apps import AppConfig

# Modules that register reducers/upcasters for their aggregates (imported once at start-up,
# so the viewer, the API, the aggregate_state command and workers all fold them the same way).
AGGREGATE_MODULES = ("workspace.ledger",)


class EventsConfig(AppConfig):
    name = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        for module in AGGREGATE_MODULES:
            import_module(module)
