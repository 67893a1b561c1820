from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # In ready(): the models these modules import are loaded only now.
        from events.logs import provide_tenant_resolver
        from tenants import overview_panels  # noqa: F401  (registers the overview tile)
        from tenants.logs import resolve_log
        from tenants.provisioning import sagas  # noqa: F401  (registers the provisioning sagas)

        provide_tenant_resolver(resolve_log)  # the event viewer reads tenant logs through tenants
