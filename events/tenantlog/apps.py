from django.apps import AppConfig


class TenantLogConfig(AppConfig):
    """Each tenant's own event log, a TENANT_APPS member: it lives inside the tenant's placement."""

    name = "events.tenantlog"
    label = "tenantlog"
    default_auto_field = "django.db.models.BigAutoField"
