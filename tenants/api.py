"""JSON API endpoints of the tenants app, mounted under /api/tenants/ by saas_admin/api.py.

Auth comes from the NinjaAPI (`operator_auth`: token or operator session); each
endpoint checks its role with `require_api_role`. Viewers read; Operators
suspend and resume, add, verify and remove custom domains
(audited). No `from __future__ import annotations`:
ninja reads the annotations at runtime.
"""

import uuid
from datetime import datetime

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from ninja.pagination import PageNumberPagination, paginate

from core.api import require_api_role
from core.permissions import Role
from tenants import selectors, services
from tenants.models import Domain, Tenant

router = Router(tags=["tenants"])


class PlacementOut(Schema):
    id: int
    kind: str
    schema_name: str
    database_alias: str
    db_name: str
    capacity: int


class TenantOut(Schema):
    id: uuid.UUID
    slug: str
    name: str
    isolation: str
    status: str
    plan: str
    placement_id: int | None
    created_at: datetime
    status_changed_at: datetime | None


class DomainOut(Schema):
    domain: str
    is_primary: bool
    verified: bool


class TenantDetailOut(TenantOut):
    placement: PlacementOut | None
    domains: list[DomainOut]
    members: int | None
    accounts: int | None


class TenantFilters(Schema):
    isolation: str = ""
    status: str = ""
    q: str = ""


class SuspendIn(Schema):
    reason: str = ""


def _detail(tenant: Tenant) -> dict:
    counts = selectors.tenant_data_counts(tenant) or {}
    return {
        **TenantOut.from_orm(tenant).dict(),
        "placement": tenant.placement,
        "domains": list(tenant.domains.all()),
        "members": counts.get("members"),
        "accounts": counts.get("accounts"),
    }


@router.get("/", response=list[TenantOut])
@paginate(PageNumberPagination, page_size=50)
def list_tenants(request, filters: Query[TenantFilters]):
    """Tenants, filtered by isolation and status, searched by slug, name or domain."""
    require_api_role(request, Role.VIEWER)
    for value, allowed, label in (
        (filters.isolation, Tenant.Isolation.values, "isolation"),
        (filters.status, Tenant.Status.values, "status"),
    ):
        if value and value not in allowed:
            raise HttpError(422, f"Unknown {label} “{value}”; use one of: {', '.join(allowed)}.")
    return selectors.tenant_list(isolation=filters.isolation, status=filters.status, search=filters.q)


@router.get("/{tenant_id}", response=TenantDetailOut)
def get_tenant(request, tenant_id: uuid.UUID):
    """One tenant with its placement, domains and data counts."""
    require_api_role(request, Role.VIEWER)
    return _detail(get_object_or_404(Tenant.objects.select_related("placement"), pk=tenant_id))


@router.post("/{tenant_id}/suspend", response=TenantOut)
def suspend_tenant(request, tenant_id: uuid.UUID, payload: SuspendIn):
    require_api_role(request, Role.OPERATOR)
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    if not services.tenant_suspend(tenant=tenant, actor=request.user, reason=payload.reason[:300], request=request):
        raise HttpError(409, f"The tenant is {tenant.status}, so it cannot be suspended.")
    return tenant


@router.post("/{tenant_id}/resume", response=TenantOut)
def resume_tenant(request, tenant_id: uuid.UUID):
    require_api_role(request, Role.OPERATOR)
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    if not services.tenant_resume(tenant=tenant, actor=request.user, request=request):
        raise HttpError(409, f"The tenant is {tenant.status}, so it cannot be resumed.")
    return tenant


class DomainIn(Schema):
    domain: str


class DomainDetailOut(Schema):
    id: int
    domain: str
    is_primary: bool
    verified: bool
    verified_at: datetime | None
    txt_record: str
    txt_value: str
    created_at: datetime

    @staticmethod
    def resolve_txt_record(obj) -> str:
        return obj.verification_record

    @staticmethod
    def resolve_txt_value(obj) -> str:
        return obj.verification_token


def _domain(tenant_id: uuid.UUID, domain_id: int) -> Domain:
    return get_object_or_404(Domain.objects.select_related("tenant"), pk=domain_id, tenant_id=tenant_id)


@router.post("/{tenant_id}/domains", response={201: DomainDetailOut})
def add_domain(request, tenant_id: uuid.UUID, payload: DomainIn):
    """Add an unverified custom domain; publish `txt_record TXT txt_value`, then verify it (Operator+)."""
    require_api_role(request, Role.OPERATOR)
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    try:
        domain = services.domain_add(tenant=tenant, domain=payload.domain, actor=request.user, request=request)
    except ValidationError as exc:
        raise HttpError(422, exc.messages[0])
    return 201, domain


@router.post("/{tenant_id}/domains/{domain_id}/verify", response=DomainDetailOut)
def verify_domain(request, tenant_id: uuid.UUID, domain_id: int):
    """Mark a custom domain verified after checking its TXT record (Operator+); 409 if it already was."""
    require_api_role(request, Role.OPERATOR)
    domain = _domain(tenant_id, domain_id)
    if not services.domain_verify(domain=domain, actor=request.user, request=request):
        raise HttpError(409, f"{domain.domain} is already verified.")
    return domain


@router.delete("/{tenant_id}/domains/{domain_id}", response={204: None})
def remove_domain(request, tenant_id: uuid.UUID, domain_id: int):
    """Remove a custom domain (Operator+); the primary domain cannot be removed (409)."""
    require_api_role(request, Role.OPERATOR)
    domain = _domain(tenant_id, domain_id)
    try:
        services.domain_remove(domain=domain, actor=request.user, request=request)
    except ValidationError as exc:
        raise HttpError(409, exc.messages[0])
    return 204, None
