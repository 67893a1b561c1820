"""Reads of tenant exports for the tenant page and the API."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from core.errors import NotFound
from tenants.models import Tenant, TenantExport


def tenant_exports(*, tenant: Tenant) -> QuerySet[TenantExport]:
    return TenantExport.objects.filter(tenant=tenant).select_related("job").order_by("-created_at")


def export_get(*, tenant: Tenant, export_id: Any) -> TenantExport:
    """One export of `tenant` (the caller already checked the actor may see the tenant), or NotFound."""
    try:
        return TenantExport.objects.select_related("tenant").get(pk=export_id, tenant=tenant)
    except (TenantExport.DoesNotExist, ValueError, ValidationError):
        raise NotFound("No such export for this tenant.") from None
