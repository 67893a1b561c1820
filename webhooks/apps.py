from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Signed outgoing webhooks for lifecycle events, delivered as jobs (docs/usage.md)."""

    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # In ready(): these modules import models, loaded only now; importing registers the delivery
        # job kind and the dispatching consumer of the control-plane log.
        from webhooks import dispatch, jobs  # noqa: F401
