"""Privacy API, mounted at /api/privacy/: requests, download links, legal holds, record of processing.

Same roles as the screens: reads Viewer+, access requests and links Operator+, erasure and holds
Admin. Every change is audited by its service; the subject's email is never returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from ninja import Field, Query, Router, Schema, Status

from core.api import require_api_role
from core.errors import InvalidInput
from core.permissions import Role
from privacy import retention, selectors, services
from privacy.models import RequestKind, SubjectRequest
from tenants.models import Tenant

router = Router(tags=["privacy"])


class RequestOut(Schema):
    id: UUID
    kind: str
    tenant: str
    subject_ref: str
    status: str
    source: str
    opened_at: datetime
    due_at: datetime
    overdue: bool
    completed_at: datetime | None
    job_id: int | None
    saga_id: UUID | None
    bundle_sha256: str
    counts: dict[str, Any]
    error: str


class RequestIn(Schema):
    tenant: str = Field(..., max_length=40, description="The tenant's slug.")
    email: str = Field(..., max_length=254)
    kind: str = Field("access", description="access (Operator+) or erasure (Admin).")


class RequestFilters(Schema):
    kind: str = Field("", max_length=20)
    status: str = Field("", max_length=20)
    tenant: str = Field("", max_length=40)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10**9)


class LinkOut(Schema):
    url: str
    expires_in_seconds: int


class HoldIn(Schema):
    tenant: str = Field(..., max_length=40)
    reason: str = Field(..., max_length=300)
    email: str = Field("", max_length=254, description="Empty: the whole tenant.")
    until: datetime | None = None


class HoldOut(Schema):
    id: int
    tenant: str
    subject_ref: str
    reason: str
    created_at: datetime
    created_by: str
    until: datetime | None
    released_at: datetime | None
    active: bool


class ProcessingOut(Schema):
    kind: str
    owner: str
    field: str
    category: str
    purpose: str
    subjects: str
    legal_basis: str
    retention: str
    erasure: str
    location: str


def _out(r: SubjectRequest) -> dict[str, Any]:
    return {
        "id": r.pk,
        "kind": r.kind,
        "tenant": r.tenant.slug,
        "subject_ref": r.subject_ref,
        "status": r.status,
        "source": r.source,
        "opened_at": r.opened_at,
        "due_at": r.due_at,
        "overdue": r.overdue,
        "completed_at": r.completed_at,
        "job_id": r.job_id,
        "saga_id": r.saga_id,
        "bundle_sha256": r.bundle_sha256,
        "counts": r.counts,
        "error": r.error,
    }


def _tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.select_related("placement").filter(slug=slug.strip()).first()
    if tenant is None:
        raise InvalidInput("No tenant with that slug.")
    return tenant


@router.get("/requests", response=list[RequestOut], summary="Data-subject requests, newest first (Viewer+)")
def request_list(request, filters: Query[RequestFilters]):
    require_api_role(request, Role.VIEWER)
    qs = selectors.request_list(kind=filters.kind, status=filters.status, tenant=filters.tenant)
    return [_out(r) for r in qs[filters.offset : filters.offset + filters.limit]]


@router.post("/requests", response={201: RequestOut}, summary="Open an access (Operator+) or erasure (Admin) request")
def request_open(request, body: RequestIn):
    require_api_role(request, Role.ADMIN if body.kind == RequestKind.ERASURE else Role.OPERATOR)
    opened = services.request_open(
        tenant=_tenant(body.tenant), email=body.email, kind=body.kind, actor=request.auth, source="api", request=request
    )
    return Status(201, _out(opened))


@router.get("/requests/{request_id}", response=RequestOut, summary="One request (Viewer+)")
def request_detail(request, request_id: str):
    require_api_role(request, Role.VIEWER)
    return _out(selectors.request_get(request_id=request_id, actor=request.auth))


@router.post("/requests/{request_id}/links", response={201: LinkOut}, summary="A single-use download link (Operator+)")
def link_create(request, request_id: str):
    require_api_role(request, Role.OPERATOR)
    subject_request = selectors.request_get(request_id=request_id, actor=request.auth)
    token = services.link_create(subject_request=subject_request, actor=request.auth, request=request)
    url = request.build_absolute_uri(f"/privacy/download/{token}/")
    return Status(201, {"url": url, "expires_in_seconds": settings.PRIVACY_LINK_TTL_SECONDS})


@router.post(
    "/requests/{request_id}/approve", response=RequestOut, summary="Approve an erasure another Admin opened (Admin)"
)
def erasure_approve(request, request_id: str):
    require_api_role(request, Role.ADMIN)
    subject_request = selectors.request_get(request_id=request_id, actor=request.auth)
    return _out(services.erasure_approve(subject_request=subject_request, actor=request.auth, request=request))


@router.post(
    "/requests/{request_id}/reject", response=RequestOut, summary="Reject an erasure another Admin opened (Admin)"
)
def erasure_reject(request, request_id: str):
    require_api_role(request, Role.ADMIN)
    subject_request = selectors.request_get(request_id=request_id, actor=request.auth)
    return _out(services.erasure_reject(subject_request=subject_request, actor=request.auth, request=request))


@router.get("/processing", response=list[ProcessingOut], summary="The record of processing, Art. 30 (Viewer+)")
def processing(request):
    require_api_role(request, Role.VIEWER)
    return selectors.processing_record()


def _hold(h) -> dict[str, Any]:
    return {
        "id": h.pk,
        "tenant": h.tenant.slug,
        "subject_ref": h.subject_ref,
        "reason": h.reason,
        "created_at": h.created_at,
        "created_by": h.created_by_label,
        "until": h.until,
        "released_at": h.released_at,
        "active": h.active,
    }


@router.get("/holds", response=list[HoldOut], summary="Legal holds, newest first (Viewer+)")
def hold_list(request):
    require_api_role(request, Role.VIEWER)
    return [_hold(h) for h in selectors.hold_list()[:500]]


@router.post("/holds", response={201: HoldOut}, summary="Place a legal hold (Admin)")
def hold_place(request, body: HoldIn):
    require_api_role(request, Role.ADMIN)
    hold = services.hold_place(
        tenant=_tenant(body.tenant),
        reason=body.reason,
        email=body.email,
        until=body.until,
        actor=request.auth,
        request=request,
    )
    return Status(201, _hold(hold))


@router.post("/holds/{hold_id}/release", response=HoldOut, summary="Release a legal hold (Admin)")
def hold_release(request, hold_id: int):
    require_api_role(request, Role.ADMIN)
    return _hold(services.hold_release(hold_id=hold_id, actor=request.auth, request=request))


class PolicyOut(Schema):
    category: str
    days: int
    enabled: bool


class PolicyIn(Schema):
    days: int = Field(..., ge=1, le=36500)
    enabled: bool = True


@router.get("/retention", response=list[PolicyOut], summary="Retention policies per data category (Viewer+)")
def retention_list(request):
    require_api_role(request, Role.VIEWER)
    return [{"category": p.category, "days": p.days, "enabled": p.enabled} for p in retention.policies()]


@router.put("/retention/{category}", response=PolicyOut, summary="Change one retention policy (Admin)")
def retention_set(request, category: str, body: PolicyIn):
    require_api_role(request, Role.ADMIN)
    policy = retention.policy_set(
        category=category, days=body.days, enabled=body.enabled, actor=request.auth, request=request
    )
    return {"category": policy.category, "days": policy.days, "enabled": policy.enabled}
