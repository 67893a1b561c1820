from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # An invalid key is one clear sentence at start-up, never a ValueError at the first signup.
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        from tenants import (
            checks,  # noqa: F401  (registers the deploy check)
            personal_data,  # noqa: F401  (declares its personal fields)
        )
        from tenants.crypto import key_problem

        problem = key_problem(settings.FIELD_ENCRYPTION_KEY)
        if problem:
            raise ImproperlyConfigured(problem)
        # In ready(): the models these modules import are loaded only now.
        from events.logs import provide_tenant_choices, provide_tenant_names, provide_tenant_resolver
        from tenants import (
            overview_panels,  # noqa: F401  (registers the overview tile)
            server_health,  # noqa: F401  (registers the server health job)
        )
        from tenants.adoption import services as adoption  # noqa: F401  (registers the import job)
        from tenants.exports import jobs as export_jobs  # noqa: F401  (registers the export and restore jobs)
        from tenants.logs import resolve_log, tenant_choices, tenant_names
        from tenants.moves import sagas as move_sagas  # noqa: F401  (registers the move saga and purge job)
        from tenants.offboarding import sagas as deletion_sagas  # noqa: F401  (registers the deletion saga)
        from tenants.provisioning import sagas  # noqa: F401  (registers the provisioning sagas)

        provide_tenant_resolver(resolve_log)  # the event viewer reads tenant logs through tenants
        provide_tenant_names(tenant_names)
        provide_tenant_choices(tenant_choices)
