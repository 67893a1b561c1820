"""JSON API endpoints of the tenants app, mounted under /api/tenants/ by saas_admin/api.py.

Auth comes from the NinjaAPI (`operator_auth`: token or operator session); each endpoint checks
its role with `require_api_role`. Viewers read; Operators provision (POST /api/tenants/), suspend
and resume, add, verify and remove custom domains (audited); Admins move tenants. Refusals are core.errors raised by
the services, answered by the one handler in core.api. No `from __future__ import annotations`:
ninja reads the annotations at runtime.
"""

import uuid
from datetime import datetime

from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import PageNumberPagination, paginate

from core.api import require_api_role
from core.errors import InvalidInput
from core.permissions import Role
from tenants import selectors, services
from tenants.exports.api import router as exports_router
from tenants.models import Tenant
from tenants.moves.plans import tenant_change_plan
from tenants.moves.services import tenant_move
from tenants.offboarding.services import tenant_delete, tenant_delete_cancel
from tenants.provisioning.services import tenant_provision
from tenants.rename import tenant_rename

router = Router(tags=["tenants"])
Isolation = Tenant.Isolation
Plan = Tenant.Plan


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


class ProvisionIn(Schema):
    slug: str = Field(max_length=40)
    isolation: Isolation
    name: str = Field("", max_length=200)
    plan: Plan = Plan.FREE
    owner_email: str = Field("", max_length=254)
    idempotency_key: str | None = Field(None, max_length=200)


class ProvisionOut(Schema):
    saga_id: uuid.UUID
    tenant_id: uuid.UUID | None
    saga_type: str
    state: str
    monitor: str


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
            raise InvalidInput(f"Unknown {label} “{value[:40]}”; use one of: {', '.join(allowed)}.")
    return selectors.tenant_list(isolation=filters.isolation, status=filters.status, search=filters.q)


@router.post("/", response={202: ProvisionOut}, summary="Provision a tenant (Operator+)")
def provision_tenant(request, payload: ProvisionIn):
    """Start the provisioning saga; follow it at `monitor` or GET /api/sagas/{saga_id}.

    The same `idempotency_key` (per token) returns the first call's saga instead of a second tenant.
    """
    require_api_role(request, Role.OPERATOR)
    key = f"api:{request.auth.pk}:{payload.idempotency_key[:150]}" if payload.idempotency_key else None
    saga = tenant_provision(
        slug=payload.slug,
        isolation=payload.isolation,
        name=payload.name,
        plan=payload.plan,
        owner_email=payload.owner_email,
        actor=request.auth,
        request=request,
        idempotency_key=key,
    )
    return Status(
        202,
        {
            "saga_id": saga.id,
            "tenant_id": saga.tenant_id,
            "saga_type": saga.saga_type,
            "state": saga.state,
            "monitor": f"/sagas/{saga.id}/",
        },
    )


@router.get("/{tenant_id}", response=TenantDetailOut)
def get_tenant(request, tenant_id: uuid.UUID):
    """One tenant with its placement, domains and data counts."""
    require_api_role(request, Role.VIEWER)
    return _detail(selectors.tenant_get(tenant_id=tenant_id, actor=request.auth))


@router.post("/{tenant_id}/suspend", response=TenantOut)
def suspend_tenant(request, tenant_id: uuid.UUID, payload: SuspendIn):
    """active → suspended (Operator+); 409 if it is not active."""
    require_api_role(request, Role.OPERATOR)
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.auth)
    return services.tenant_suspend(tenant=tenant, actor=request.auth, reason=payload.reason[:300], request=request)


@router.post("/{tenant_id}/resume", response=TenantOut)
def resume_tenant(request, tenant_id: uuid.UUID):
    """suspended → active (Operator+); 409 if it is not suspended."""
    require_api_role(request, Role.OPERATOR)
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.auth)
    return services.tenant_resume(tenant=tenant, actor=request.auth, request=request)


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


@router.post("/{tenant_id}/domains", response={201: DomainDetailOut})
def add_domain(request, tenant_id: uuid.UUID, payload: DomainIn):
    """Add an unverified custom domain; publish `txt_record TXT txt_value`, then verify it (Operator+)."""
    require_api_role(request, Role.OPERATOR)
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.auth)
    return Status(201, services.domain_add(tenant=tenant, domain=payload.domain, actor=request.auth, request=request))


@router.post("/{tenant_id}/domains/{domain_id}/verify", response=DomainDetailOut)
def verify_domain(request, tenant_id: uuid.UUID, domain_id: int):
    """Mark a custom domain verified after checking its TXT record (Operator+); 409 if it already was."""
    require_api_role(request, Role.OPERATOR)
    domain = selectors.domain_get(tenant_id=tenant_id, domain_id=domain_id, actor=request.auth)
    return services.domain_verify(domain=domain, actor=request.auth, request=request)


@router.delete("/{tenant_id}/domains/{domain_id}", response={204: None})
def remove_domain(request, tenant_id: uuid.UUID, domain_id: int):
    """Remove a custom domain (Operator+); the primary domain cannot be removed (409)."""
    require_api_role(request, Role.OPERATOR)
    domain = selectors.domain_get(tenant_id=tenant_id, domain_id=domain_id, actor=request.auth)
    services.domain_remove(domain=domain, actor=request.auth, request=request)
    return Status(204, None)


# --- Moves between isolation levels (Admin) --------------------------------------------------


class MoveIn(Schema):
    to: Isolation
    server: str = Field("", max_length=63)


class MoveOut(Schema):
    id: uuid.UUID
    tenant_id: uuid.UUID
    saga_id: uuid.UUID | None
    state: str
    phase: str
    source_isolation: str
    source_label: str
    target_isolation: str
    target_label: str
    server: str
    rows_total: int
    rows_copied: int
    delta_rows: int
    freeze_seconds: float | None
    tables: dict
    created_at: datetime
    switched_at: datetime | None
    purge_after: datetime | None
    purged_at: datetime | None
    error: str


@router.post("/{tenant_id}/move", response={202: MoveOut}, summary="Move a tenant to another isolation level (Admin)")
def move_tenant(request, tenant_id: uuid.UUID, payload: MoveIn):
    """Starts the move saga; follow it with GET /api/tenants/{id}/moves. 409 if the tenant is not
    active or is already moving, 422 for a target it cannot move to."""
    require_api_role(request, Role.ADMIN)
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.auth)
    move = tenant_move(tenant=tenant, to=payload.to, server=payload.server, actor=request.auth, request=request)
    return Status(202, move)


@router.get("/{tenant_id}/moves", response=list[MoveOut])
def list_moves(request, tenant_id: uuid.UUID):
    """The tenant's moves, newest first, with live progress (rows copied, freeze time)."""
    require_api_role(request, Role.VIEWER)
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.auth)
    return list(selectors.tenant_moves(tenant=tenant)[:50])


# --- Offboarding (Admin) --------------------------------------------------------------------------


class DeleteIn(Schema):
    confirm: str = Field(max_length=100)
    reason: str = Field("", max_length=300)


class DeletionOut(Schema):
    id: uuid.UUID
    tenant_id: uuid.UUID
    state: str
    previous_status: str
    grace_until: datetime
    saga_id: uuid.UUID | None
    destroyed: dict
    created_at: datetime
    finished_at: datetime | None


@router.post("/{tenant_id}/delete", response={202: DeletionOut}, summary="Schedule a tenant's deletion (Admin)")
def delete_tenant(request, tenant_id: uuid.UUID, payload: DeleteIn):
    """`confirm` must be the tenant's slug. The tenant goes `deleting` at once and is destroyed after
    the grace period; POST …/restore cancels until then. 409 if it is not active or suspended."""
    require_api_role(request, Role.ADMIN)
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.auth)
    deletion = tenant_delete(
        tenant=tenant, confirm=payload.confirm, reason=payload.reason, actor=request.auth, request=request
    )
    return Status(202, deletion)


@router.post("/{tenant_id}/restore", response=TenantOut, summary="Cancel a deletion within its grace period (Admin)")
def restore_tenant(request, tenant_id: uuid.UUID):
    require_api_role(request, Role.ADMIN)
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.auth)
    return tenant_delete_cancel(tenant=tenant, actor=request.auth, request=request)


class PlanIn(Schema):
    plan: Plan
    confirm_move: bool = False


class PlanOut(Schema):
    plan: str
    isolation: str
    move: MoveOut | None


@router.post("/{tenant_id}/plan", response=PlanOut, summary="Change a tenant's plan (Admin)")
def change_plan(request, tenant_id: uuid.UUID, payload: PlanIn):
    """A plan on another isolation level (TENANCY_PLAN_ISOLATION) also starts the move, and is refused
    with 422 unless `confirm_move` is true."""
    require_api_role(request, Role.ADMIN)
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.auth)
    move = tenant_change_plan(
        tenant=tenant, plan=payload.plan, confirm_move=payload.confirm_move, actor=request.auth, request=request
    )
    return {"plan": tenant.plan, "isolation": tenant.isolation, "move": move}


# --- Rename (Admin) -------------------------------------------------------------------------------


class RenameIn(Schema):
    slug: str = Field(max_length=40)
    domain: str = Field("", max_length=253)


class RenameOut(Schema):
    slug: str
    domain: str
    move: MoveOut | None


@router.post(
    "/{tenant_id}/rename", response=RenameOut, summary="Rename a tenant: slug, primary domain, storage (Admin)"
)
def rename_tenant(request, tenant_id: uuid.UUID, payload: RenameIn):
    """The old primary host redirects to the new one for TENANCY_RENAME_REDIRECT_DAYS. A schema or
    dedicated tenant's storage follows through a move to the same level (`move`; follow it with GET
    …/moves). 422 for a bad or taken slug or domain, 409 if the tenant is not active or is moving."""
    require_api_role(request, Role.ADMIN)
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.auth)
    renamed, move = tenant_rename(
        tenant=tenant, new_slug=payload.slug, domain=payload.domain, actor=request.auth, request=request
    )
    primary = renamed.domains.filter(is_primary=True).values_list("domain", flat=True).first() or ""
    return {"slug": renamed.slug, "domain": primary, "move": move}


# Exports and restores (tenants/exports/api.py): /api/tenants/{id}/exports…
router.add_router("", exports_router)
