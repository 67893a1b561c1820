"""What the tenant commands share: finding the tenant a command names, or one sentence."""

from __future__ import annotations

from django.core.management.base import CommandError

from tenants.models import Tenant


def tenant_named(slug: str) -> Tenant:
    """The tenant whose slug the operator typed (with its placement), or a CommandError saying there is none."""
    tenant = None
    if "\x00" not in slug:
        tenant = Tenant.objects.select_related("placement").filter(slug=slug[:40]).first()
    if tenant is None:
        raise CommandError(f"There is no tenant “{slug[:60]}”.")
    return tenant
