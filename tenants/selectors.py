"""Reads of control-plane tenancy rows."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q, QuerySet

from tenants.models import Domain, Tenant


def tenant_for_host(host: str) -> Tenant | None:
    """The tenant a host name belongs to: a verified Domain row (the primary `<slug>.BASE_DOMAIN` is verified)."""
    host = host.lower().rstrip(".")
    if not host or len(host) > 253:
        return None
    domain = Domain.objects.select_related("tenant", "tenant__placement").filter(domain=host, verified=True).first()
    return domain.tenant if domain else None


def primary_domain_for(slug: str) -> str:
    return f"{slug}.{settings.BASE_DOMAIN}"


def tenant_list(
    *, isolation: str = "", status: str = "", search: str = "", placement_id: int | None = None
) -> QuerySet[Tenant]:
    qs = Tenant.objects.select_related("placement")
    if isolation:
        qs = qs.filter(isolation=isolation)
    if status:
        qs = qs.filter(status=status)
    if placement_id:
        qs = qs.filter(placement_id=placement_id)
    if search:
        search = search.strip()[:100]
        qs = qs.filter(
            Q(slug__icontains=search) | Q(name__icontains=search) | Q(domains__domain__icontains=search)
        ).distinct()
    return qs.order_by("slug")
