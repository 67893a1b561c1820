"""JSON API of tenant exports, mounted under /api/tenants/ (tenants/api.py adds this router).

Viewers list; Operators export and download (the file holds every row of the tenant); Admins restore
in place with the slug typed. Refusals are core.errors answered by the one handler in core.api. No
`from __future__ import annotations`: ninja reads the annotations at runtime.
"""

import uuid
from datetime import datetime

from django.http import FileResponse
from ninja import Field, Router, Schema, Status
from ninja.pagination import PageNumberPagination, paginate

from core.api import require_api_role
from core.permissions import Role
from tenants import selectors as tenant_selectors
from tenants.exports import selectors, services

router = Router(tags=["tenant exports"])


class ExportOut(Schema):
    id: uuid.UUID
    tenant_id: uuid.UUID
    reason: str
    state: str
    job_id: int | None
    source_isolation: str
    size: int
    sha256: str
    rows: int
    tables: dict
    format_version: int
    error: str
    requested_by: str
    created_at: datetime
    finished_at: datetime | None


class RestoreIn(Schema):
    confirm: str = Field(max_length=100)


class RestoreOut(Schema):
    job_id: int
    group: str
    restore_point_id: uuid.UUID


@router.post("/{tenant_id}/exports", response={202: ExportOut}, summary="Export a tenant (Operator+)")
def create_export(request, tenant_id: uuid.UUID):
    """Starts a `tenants.export` job; follow it with GET …/exports. 409 if an export is already running
    or the tenant has no data (deleted, not yet provisioned)."""
    require_api_role(request, Role.OPERATOR)
    tenant = tenant_selectors.tenant_get(tenant_id=tenant_id, actor=request.auth)
    return Status(202, services.tenant_export(tenant=tenant, actor=request.auth, request=request))


@router.get("/{tenant_id}/exports", response=list[ExportOut])
@paginate(PageNumberPagination, page_size=20)
def list_exports(request, tenant_id: uuid.UUID):
    """The tenant's exports, newest first, with size (bytes), rows per table and state."""
    require_api_role(request, Role.VIEWER)
    tenant = tenant_selectors.tenant_get(tenant_id=tenant_id, actor=request.auth)
    return selectors.tenant_exports(tenant=tenant)


@router.get("/{tenant_id}/exports/{export_id}/download", summary="Download an export's file (Operator+)")
def download_export(request, tenant_id: uuid.UUID, export_id: uuid.UUID):
    require_api_role(request, Role.OPERATOR)
    tenant = tenant_selectors.tenant_get(tenant_id=tenant_id, actor=request.auth)
    export = selectors.export_get(tenant=tenant, export_id=export_id)
    path = services.export_file(export=export, actor=request.auth, request=request)
    response = FileResponse(path.open("rb"), as_attachment=True, filename=f"{tenant.slug}-{export.pk}.zip")
    response["Cache-Control"] = "no-store"
    return response


@router.post("/{tenant_id}/exports/{export_id}/restore", response={202: RestoreOut}, summary="Restore in place (Admin)")
def restore_export(request, tenant_id: uuid.UUID, export_id: uuid.UUID, payload: RestoreIn):
    """`confirm` must be the tenant's slug. The tenant's writes pause (409 with Retry-After) while a
    restore point is exported and the rows are replaced; follow the job on /api/jobs/{job_id}."""
    require_api_role(request, Role.ADMIN)
    tenant = tenant_selectors.tenant_get(tenant_id=tenant_id, actor=request.auth)
    export = selectors.export_get(tenant=tenant, export_id=export_id)
    job = services.tenant_restore_in_place(
        tenant=tenant, export=export, confirm=payload.confirm, actor=request.auth, request=request
    )
    return Status(202, {"job_id": job.pk, "group": job.group_id, "restore_point_id": job.payload["restore_point_id"]})
