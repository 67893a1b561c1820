"""Reads of control-plane tenancy rows."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet

from core.errors import NotFound
from core.permissions import Role, check_role
from tenants import hostcache
from tenants.context import tenant_context
from tenants.models import Domain, Tenant, TenantImport, TenantMove
from workspace import interface as workspace

logger = logging.getLogger(__name__)

_host_cache: dict[str, tuple[float, Tenant | None]] = {}


def host_cache_clear() -> None:
    """Forget every cached host (called by the services that change tenants or domains)."""
    _host_cache.clear()


def tenant_for_host(host: str) -> Tenant | None:
    """The tenant a host name belongs to: a verified Domain row (the primary `<slug>.BASE_DOMAIN` is verified).

    Cached per process for TENANCY_HOST_CACHE_SECONDS (0 disables): the lookup is the largest part
    of the per-request tenancy cost. Services that change a tenant clear this process's cache; other
    processes clear theirs when notified (tenants.hostcache), the TTL being the backstop.
    """
    host = host.lower().rstrip(".")
    if not host or len(host) > 253:
        return None
    ttl = settings.TENANCY_HOST_CACHE_SECONDS
    hostcache.ensure_listener(host_cache_clear)
    now = time.monotonic()
    if ttl > 0:
        cached = _host_cache.get(host)
        if cached is not None and cached[0] > now:
            return cached[1]
    domain = Domain.objects.select_related("tenant", "tenant__placement").filter(domain=host, verified=True).first()
    tenant = domain.tenant if domain else None
    if ttl > 0:
        if len(_host_cache) > 10_000:  # unknown hosts must not grow it without bound
            _host_cache.clear()
        _host_cache[host] = (now + ttl, tenant)
    return tenant


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


def tenant_totals() -> dict[str, int]:
    """Tenants per isolation level and in total (not counting deleted ones)."""
    rows = Tenant.objects.exclude(status=Tenant.Status.DELETED).values("isolation").annotate(n=Count("pk"))
    totals = {value: 0 for value in Tenant.Isolation.values}
    totals.update({row["isolation"]: row["n"] for row in rows})
    totals["all"] = sum(totals.values())
    return totals


def placement_tenant_count(placement) -> int:
    return placement.tenants.count() if placement is not None else 0


def tenant_data_counts(tenant: Tenant) -> dict[str, int] | None:
    """Member and account counts read inside the tenant's own context; None if its data cannot be reached."""
    if tenant.placement is None or tenant.status in (Tenant.Status.DELETED, Tenant.Status.DELETING):
        return None
    try:
        with tenant_context(tenant):
            return workspace.data_counts()
    except Exception:  # an unreachable dedicated database must not break the operator page
        logger.warning("could not count data of tenant %s", tenant.pk, exc_info=True)
        return None


def tenant_get(*, tenant_id: Any, actor: Any) -> Tenant:
    """The tenant (with its placement) for an operator who may see tenants (Viewer+), or NotFound."""
    check_role(actor, Role.VIEWER)
    try:
        return Tenant.objects.select_related("placement__server").get(pk=tenant_id)
    except (Tenant.DoesNotExist, ValueError, ValidationError):
        raise NotFound("No such tenant.") from None


def domain_get(*, tenant_id: Any, domain_id: Any, actor: Any) -> Domain:
    """One of the tenant's domains for an operator who may see tenants, or NotFound."""
    check_role(actor, Role.VIEWER)
    try:
        return Domain.objects.select_related("tenant").get(pk=domain_id, tenant_id=tenant_id)
    except (Domain.DoesNotExist, ValueError, ValidationError):
        raise NotFound("No such domain for this tenant.") from None


def tenant_counts_by_status() -> dict[str, int]:
    rows = Tenant.objects.values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows}


def tenant_moves(*, tenant: Tenant) -> QuerySet[TenantMove]:
    """The tenant's moves, newest first (the Moves card and the API)."""
    return TenantMove.objects.filter(tenant=tenant).select_related("target_placement").order_by("-created_at")


def tenant_import_record(tenant: Tenant) -> TenantImport | None:
    """Where an imported tenant came from (import_django_tenants), or None."""
    return TenantImport.objects.filter(tenant=tenant).first()
