from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_operator_groups(sender: Any, using: str, apps: Any = None, **kwargs: Any) -> None:
    """The role groups exist after every migrate and every flush (flush empties auth_group)."""
    # At call time: AppConfig modules load before the app registry is ready.
    from django.apps import apps as global_apps
    from django.db import router

    from core.db_backend.base import owner_alias_for
    from core.permissions import Role

    Group = (apps or global_apps).get_model("auth", "Group")
    if using == "data":  # tenant hosts' role: the same database, and it may not touch auth tables
        return
    if not router.allow_migrate_model(owner_alias_for(using), Group):
        return
    for role in Role:
        Group.objects.using(using).get_or_create(name=role.group_name)


class SaasAdminConfig(AppConfig):
    name = "saas_admin"
    verbose_name = "Control plane"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # In ready(): the models these modules import are loaded only now.
        from saas_admin import (
            compliance_checks,  # noqa: F401  (registers the compliance checks that read operators)
            panels,  # noqa: F401  (registers the health and operators panels)
            personal_data,  # noqa: F401  (declares operator and third-party personal fields)
        )
        from saas_admin.celery import ensure_filesystem_broker_folders

        ensure_filesystem_broker_folders()
        post_migrate.connect(ensure_operator_groups, sender=self)
