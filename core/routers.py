"""Database routing.

- OwnerMigratesRouter: migrations run only through owner aliases. The
  `default` alias connects as the app role, which owns nothing and may not
  create tables; schema changes go through `owner` (see dbroles.py) or
  `<alias>__owner` for a dedicated tenant database.
- TenantRouter: data-plane models (TENANT_APPS) go to the alias of the open
  tenant_context (see tenants/context.py); in a request on a tenant's host *every*
  model goes there (the data-plane role: control-plane tables are out of reach);
  outside a tenant context they go to `default`,
  whose empty RLS'd copies return zero rows. In a placement (pool/schema
  migration, or any dedicated database) only TENANT_APPS migrate.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from core.tenancy import active_tenant, current_alias, data_plane_request, migrating_placement


def is_owner_alias(alias: str) -> bool:
    return alias == "owner" or alias.endswith("__owner")


def is_tenant_app(app_label: str) -> bool:
    return app_label in {label.rsplit(".", 1)[-1] for label in settings.TENANT_APPS}


class OwnerMigratesRouter:
    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        if not is_owner_alias(db):
            return False
        return None


CACHE_APP = "django_cache"  # the app label of Django's database-cache model


class TenantRouter:
    def _alias(self, model: Any) -> str | None:
        if data_plane_request():
            # A tenant host's request: everything on the data-plane role. The workspace-lockout
            # cache lives in the control-plane database, which the data-plane role's control alias
            # (`data`) reaches even for a dedicated tenant.
            if model._meta.app_label == CACHE_APP:
                active = active_tenant()
                return (active.control_alias if active else None) or current_alias()
            return current_alias()
        if not is_tenant_app(model._meta.app_label):
            return None
        return current_alias()

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return self._alias(model)

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return self._alias(model)

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        if migrating_placement() or (db != "owner" and is_owner_alias(db)):
            return is_tenant_app(app_label)
        return None
