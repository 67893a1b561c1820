"""Operator screens for tenants: list (filter, search, paginate), detail, suspend/resume, custom domains."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.permissions import Role, role_required
from tenants import selectors, services
from tenants.models import Domain, Tenant

PAGE_SIZE = 25


@role_required(Role.VIEWER)
def tenant_list(request: HttpRequest) -> HttpResponse:
    isolation = request.GET.get("isolation", "")
    status = request.GET.get("status", "")
    search = request.GET.get("q", "").strip()
    isolation = isolation if isolation in Tenant.Isolation.values else ""
    status = status if status in Tenant.Status.values else ""
    qs = selectors.tenant_list(isolation=isolation, status=status, search=search)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "isolation": isolation,
        "status": status,
        "q": search,
        "querystring": query.urlencode(),
        "isolations": Tenant.Isolation.choices,
        "statuses": Tenant.Status.choices,
        "totals": selectors.tenant_totals(),
        "filtered": bool(isolation or status or search),
    }
    template = "tenants/list.html#results" if request.htmx else "tenants/list.html"
    return render(request, template, context)


@role_required(Role.VIEWER)
def tenant_detail(request: HttpRequest, tenant_id) -> HttpResponse:
    tenant = get_object_or_404(Tenant.objects.select_related("placement"), pk=tenant_id)
    context = {
        "tenant": tenant,
        "domains": tenant.domains.all(),
        "base_domain": settings.BASE_DOMAIN,
        "counts": selectors.tenant_data_counts(tenant),
        "placement_tenants": selectors.placement_tenant_count(tenant.placement),
    }
    return render(request, "tenants/detail.html", context)


@require_POST
@role_required(Role.OPERATOR)
def tenant_suspend(request: HttpRequest, tenant_id) -> HttpResponse:
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    reason = request.POST.get("reason", "").strip()[:300]
    if services.tenant_suspend(tenant=tenant, actor=request.user, reason=reason, request=request):
        messages.success(request, f"{tenant.name} is suspended; its workspace now shows a suspended page.")
    else:
        messages.error(request, f"{tenant.name} is {tenant.get_status_display().lower()}, so it cannot be suspended.")
    return redirect("tenants:detail", tenant_id=tenant.pk)


@require_POST
@role_required(Role.OPERATOR)
def tenant_resume(request: HttpRequest, tenant_id) -> HttpResponse:
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    if services.tenant_resume(tenant=tenant, actor=request.user, request=request):
        messages.success(request, f"{tenant.name} is active again.")
    else:
        messages.error(request, f"{tenant.name} is {tenant.get_status_display().lower()}, so it cannot be resumed.")
    return redirect("tenants:detail", tenant_id=tenant.pk)


# --- Custom domains: adding, verifying and removing change who a host name serves, so all three
# need Operator or Admin (the same level as suspend/resume); viewers only see the Domains card.
# Verification is an operator's confirmation that the customer published the TXT record shown
# on the card (no DNS lookups from here; see docs/tenancy.md).


@require_POST
@role_required(Role.OPERATOR)
def domain_add(request: HttpRequest, tenant_id) -> HttpResponse:
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    try:
        domain = services.domain_add(tenant=tenant, domain=request.POST.get("domain", ""), actor=request.user,
                                     request=request)  # fmt: skip
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(
            request,
            f"{domain.domain} was added. Ask the customer to publish the TXT record shown below, then verify it.",
        )
    return redirect("tenants:detail", tenant_id=tenant.pk)


@require_POST
@role_required(Role.OPERATOR)
def domain_verify(request: HttpRequest, tenant_id, domain_id: int) -> HttpResponse:
    domain = get_object_or_404(Domain.objects.select_related("tenant"), pk=domain_id, tenant_id=tenant_id)
    if services.domain_verify(domain=domain, actor=request.user, request=request):
        messages.success(request, f"{domain.domain} is verified and now serves {domain.tenant.name}.")
    else:
        messages.info(request, f"{domain.domain} was already verified.")
    return redirect("tenants:detail", tenant_id=domain.tenant_id)


@require_POST
@role_required(Role.OPERATOR)
def domain_remove(request: HttpRequest, tenant_id, domain_id: int) -> HttpResponse:
    domain = get_object_or_404(Domain.objects.select_related("tenant"), pk=domain_id, tenant_id=tenant_id)
    try:
        services.domain_remove(domain=domain, actor=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"{domain.domain} was removed; it no longer reaches {domain.tenant.name}.")
    return redirect("tenants:detail", tenant_id=domain.tenant_id)
