from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    """The tenant-facing sample domain (TENANT_APPS): members and the event-sourced ledger."""

    name = "workspace"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.apps import apps  # in ready(): the registry is complete now

        from workspace import personal_data  # noqa: F401  (declares its personal fields)

        # The ledger's reducer registers itself with the event store's aggregates, so the viewer,
        # the API, the aggregate_state command and workers all fold ledger accounts the same way.
        # (The django-tenants baseline in bench/ installs the workspace without an event store.)
        if apps.is_installed("events"):
            from workspace import ledger  # noqa: F401
