from django.apps import AppConfig


class SaasAdminConfig(AppConfig):
    name = "saas_admin"
    verbose_name = "Control plane"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from saas_admin.celery import ensure_filesystem_broker_folders

        ensure_filesystem_broker_folders()
