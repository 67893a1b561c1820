"""Operator screens for tenant exports (the Exports card of the tenant page) and the owner's download.

Viewers see the list; Operators export and download (the file holds every row of the tenant); Admins
restore in place (typed confirmation). The owner of a tenant being deleted downloads its final export
through an emailed link (no sign-in: the token is the permission, valid during the grace period).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core.errors import ApplicationError, NotFound
from core.http import OperatorRequest
from core.permissions import Role, role_required
from tenants import selectors as tenant_selectors
from tenants.exports import selectors, services
from tenants.models import Tenant

PAGE_SIZE = 10


def exports_context(tenant: Tenant, page_number: str | None = None) -> dict:
    page = Paginator(selectors.tenant_exports(tenant=tenant), PAGE_SIZE).get_page(page_number)
    return {
        "exports_page": page,
        "exports_open": any(e.state in services.OPEN for e in page.object_list),
    }


@require_GET
@role_required(Role.VIEWER)
def tenant_exports(request: OperatorRequest, tenant_id) -> HttpResponse:
    """The Exports card alone: the tenant page polls it while an export runs, and pages through it."""
    tenant = tenant_selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    context = {"tenant": tenant, **exports_context(tenant, request.GET.get("page"))}
    return render(request, "tenants/_exports.html", context)


def _back(tenant: Tenant) -> HttpResponse:
    return redirect(reverse("tenants:detail", args=[tenant.pk]) + "#exports")


@require_POST
@role_required(Role.OPERATOR)
def tenant_export_create(request: OperatorRequest, tenant_id) -> HttpResponse:
    tenant = tenant_selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    try:
        services.tenant_export(tenant=tenant, actor=request.user, request=request)
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Exporting {tenant.name}; the file appears below when it is ready.")
    return _back(tenant)


@require_GET
@role_required(Role.OPERATOR)
def tenant_export_download(request: OperatorRequest, tenant_id, export_id) -> FileResponse:
    tenant = tenant_selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    export = selectors.export_get(tenant=tenant, export_id=export_id)
    try:
        path = services.export_file(export=export, actor=request.user, request=request)
    except ApplicationError as exc:
        raise Http404(str(exc)) from None
    return _file(path, f"{tenant.slug}-{export.created_at:%Y%m%d-%H%M%S}.zip")


@require_POST
@role_required(Role.ADMIN)
def tenant_export_restore(request: OperatorRequest, tenant_id, export_id) -> HttpResponse:
    """Replace the tenant's rows with this export (Admin, the slug typed); a restore point comes first."""
    tenant = tenant_selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    export = selectors.export_get(tenant=tenant, export_id=export_id)
    try:
        services.tenant_restore_in_place(
            tenant=tenant, export=export, confirm=request.POST.get("confirm", "")[:100], actor=request.user,
            request=request,
        )  # fmt: skip
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Restoring {tenant.name}: a restore point is taken first; writes wait meanwhile.")
    return _back(tenant)


@require_GET
def owner_download(request: HttpRequest, token: str) -> FileResponse:
    try:
        export, path = services.owner_link_redeem(token=token, request=request)
    except NotFound as exc:
        raise Http404(str(exc)) from None
    return _file(path, f"{export.tenant.slug}-final-export.zip")


def _file(path, filename: str) -> FileResponse:
    response = FileResponse(path.open("rb"), as_attachment=True, filename=filename)
    response["Cache-Control"] = "no-store"
    return response
