"""Operator screens for tenants: list (filter, search, paginate), provision, detail, suspend/resume, custom domains.

Permissions are checked here, server-side (templates only hide buttons): Viewers read; Operators
provision, suspend, resume and manage custom domains; Admins move tenants between levels. Every object is looked up through an
access-scoped getter (selectors.tenant_get, selectors.domain_get) that answers 404 for anything
missing or malformed; every refusal is one sentence from the service, shown as a message.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ApplicationError
from core.http import OperatorRequest
from core.permissions import Role, role_required
from sagas.models import Saga
from tenants import selectors, services
from tenants.exports.views import exports_context
from tenants.forms import OperatorProvisionForm, RenameForm
from tenants.models import Tenant
from tenants.moves import plans as plan_services
from tenants.moves import services as move_services
from tenants.offboarding import services as offboarding
from tenants.provisioning import services as provisioning
from tenants.rename import tenant_rename
from tenants.servers import server_list

PAGE_SIZE = 25


@role_required(Role.VIEWER)
def tenant_list(request: OperatorRequest) -> HttpResponse:
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


@require_http_methods(["GET", "POST"])
@role_required(Role.OPERATOR)
def tenant_provision(request: OperatorRequest) -> HttpResponse:
    """The Provision form; its POST starts the provisioning saga and shows it live in the saga monitor.

    Each rendered form carries a fresh request key: submitting the same form twice (a double click,
    a browser retry) lands on the first submission's saga instead of starting a second one.
    """
    form = OperatorProvisionForm(request.POST or None)
    if request.method == "POST":
        key = f"operator:{request.user.pk}:{request.POST.get('request_key', '')[:64]}"
        existing = Saga.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return redirect("sagas:detail", saga_id=existing.id)
        if form.is_valid():
            data = form.cleaned_data
            try:
                saga = provisioning.tenant_provision(
                    slug=data["slug"],
                    isolation=data["isolation"],
                    name=data["name"],
                    plan=data["plan"],
                    owner_email=data["owner_email"],
                    actor=request.user,
                    request=request,
                    idempotency_key=f"operator:{request.user.pk}:{data['request_key']}",
                )
            except ApplicationError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("sagas:detail", saga_id=saga.id)
    status = 400 if request.method == "POST" else 200
    return render(request, "tenants/provision.html", {"form": form}, status=status)


@role_required(Role.VIEWER)
def tenant_detail(request: OperatorRequest, tenant_id) -> HttpResponse:
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    context = {
        "tenant": tenant,
        "domains": tenant.domains.all(),
        "base_domain": settings.BASE_DOMAIN,
        "rename_redirect_days": settings.TENANCY_RENAME_REDIRECT_DAYS,
        "counts": selectors.tenant_data_counts(tenant),
        "placement_tenants": selectors.placement_tenant_count(tenant.placement),
        **_moves_context(tenant),
        "deletion": tenant.deletions.order_by("-created_at").first(),
        **exports_context(tenant),
        "adopted": selectors.tenant_import_record(tenant),
    }
    return render(request, "tenants/detail.html", context)


def _moves_context(tenant) -> dict:
    moves = list(selectors.tenant_moves(tenant=tenant)[:10])
    return {
        "moves": moves,
        "moves_open": any(m.state == m.State.RUNNING for m in moves),
        "move_levels": Tenant.Isolation.choices,
        "move_servers": [s.name for s in server_list() if s.state == s.State.ACTIVE],
        "plan_choices": Tenant.Plan.choices,
    }


@role_required(Role.VIEWER)
def tenant_moves(request: OperatorRequest, tenant_id) -> HttpResponse:
    """The Moves card alone: the tenant page polls it every second while a move runs."""
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    return render(request, "tenants/_moves.html", {"tenant": tenant, **_moves_context(tenant)})


@require_POST
@role_required(Role.ADMIN)
def tenant_move(request: OperatorRequest, tenant_id) -> HttpResponse:
    """Start a move to another isolation level (Admin: it freezes the tenant's writes briefly)."""
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    to = request.POST.get("to", "")[:20]
    server = request.POST.get("server", "")[:63]
    try:
        move_services.tenant_move(tenant=tenant, to=to, server=server, actor=request.user, request=request)
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Moving {tenant.name} to {to}; progress is shown below.")
    return redirect(reverse("tenants:detail", args=[tenant.pk]) + "#moves")


@require_POST
@role_required(Role.ADMIN)
def tenant_rename_view(request: OperatorRequest, tenant_id) -> HttpResponse:
    """Rename the tenant: slug, primary domain (the old host redirects for a while), and through a move
    its schema or database name (Admin)."""
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    form = RenameForm(request.POST)
    if not form.is_valid():
        messages.error(request, str(next(iter(form.errors.values()))[0]))
        return redirect(reverse("tenants:detail", args=[tenant.pk]) + "#domains")
    try:
        renamed, move = tenant_rename(
            tenant=tenant, new_slug=form.cleaned_data["slug"], domain=form.cleaned_data["domain"],
            actor=request.user, request=request,
        )  # fmt: skip
    except ApplicationError as exc:
        messages.error(request, str(exc))
        return redirect(reverse("tenants:detail", args=[tenant.pk]) + "#domains")
    note = "; its storage is being moved to the new name (progress below)." if move else "."
    messages.success(request, f"{renamed.name} is now “{renamed.slug}”; the old address redirects to the new one{note}")
    return redirect(reverse("tenants:detail", args=[tenant.pk]) + ("#moves" if move else "#domains"))


def _act(request: OperatorRequest, tenant_id, action, done: str, **kwargs) -> HttpResponse:
    """Run one service action; show its one-sentence refusal or `done`; back to the tenant page."""
    try:
        result = action(actor=request.user, request=request, **kwargs)
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done.format(result=result))
    return redirect("tenants:detail", tenant_id=tenant_id)


@require_POST
@role_required(Role.OPERATOR)
def tenant_suspend(request: OperatorRequest, tenant_id) -> HttpResponse:
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    reason = request.POST.get("reason", "").strip()[:300]
    return _act(
        request,
        tenant.pk,
        services.tenant_suspend,
        "{result.name} is suspended; its workspace now shows a suspended page.",
        tenant=tenant,
        reason=reason,
    )


@require_POST
@role_required(Role.OPERATOR)
def tenant_resume(request: OperatorRequest, tenant_id) -> HttpResponse:
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    return _act(request, tenant.pk, services.tenant_resume, "{result.name} is active again.", tenant=tenant)


# --- Custom domains: adding, verifying and removing change who a host name serves, so all three
# need Operator or Admin (the same level as suspend/resume); viewers only see the Domains card.
# Verification is an operator's confirmation that the customer published the TXT record shown
# on the card (no DNS lookups from here; see docs/tenancy.md).


@require_POST
@role_required(Role.OPERATOR)
def domain_add(request: OperatorRequest, tenant_id) -> HttpResponse:
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    return _act(
        request,
        tenant.pk,
        services.domain_add,
        "{result.domain} was added. Ask the customer to publish the TXT record shown below, then verify it.",
        tenant=tenant,
        domain=request.POST.get("domain", ""),
    )


@require_POST
@role_required(Role.OPERATOR)
def domain_verify(request: OperatorRequest, tenant_id, domain_id: int) -> HttpResponse:
    domain = selectors.domain_get(tenant_id=tenant_id, domain_id=domain_id, actor=request.user)
    return _act(
        request,
        domain.tenant_id,
        services.domain_verify,
        "{result.domain} is verified and now serves {result.tenant.name}.",
        domain=domain,
    )


@require_POST
@role_required(Role.OPERATOR)
def domain_remove(request: OperatorRequest, tenant_id, domain_id: int) -> HttpResponse:
    domain = selectors.domain_get(tenant_id=tenant_id, domain_id=domain_id, actor=request.user)
    return _act(
        request,
        domain.tenant_id,
        services.domain_remove,
        f"{domain.domain} was removed; it no longer reaches {domain.tenant.name}.",
        domain=domain,
    )


@require_POST
@role_required(Role.ADMIN)
def tenant_delete(request: OperatorRequest, tenant_id) -> HttpResponse:
    """Schedule the tenant's deletion (Admin, the slug typed as confirmation); restorable until the
    grace period ends."""
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    try:
        deletion = offboarding.tenant_delete(
            tenant=tenant, confirm=request.POST.get("confirm", "")[:100], reason=request.POST.get("reason", "")[:300],
            actor=request.user, request=request,
        )  # fmt: skip
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"{tenant.name} will be deleted after {deletion.grace_until:%Y-%m-%d %H:%M} UTC; until then it can be restored.",
        )
    return redirect(reverse("tenants:detail", args=[tenant.pk]) + "#deletion")


@require_POST
@role_required(Role.ADMIN)
def tenant_restore(request: OperatorRequest, tenant_id) -> HttpResponse:
    """Cancel a deletion that is still within its grace period."""
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    return _act(request, tenant.pk, offboarding.tenant_delete_cancel, "{result.name} is restored.", tenant=tenant)


@require_POST
@role_required(Role.ADMIN)
def tenant_plan(request: OperatorRequest, tenant_id) -> HttpResponse:
    """Change the plan (Admin: a plan on another level moves the tenant, once confirmed)."""
    tenant = selectors.tenant_get(tenant_id=tenant_id, actor=request.user)
    plan = request.POST.get("plan", "")[:20]
    try:
        move = plan_services.tenant_change_plan(
            tenant=tenant, plan=plan, confirm_move=request.POST.get("confirm_move") == "1", actor=request.user,
            request=request,
        )  # fmt: skip
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{tenant.name} is on the {plan} plan" + ("; the move has started." if move else "."))
    return redirect(reverse("tenants:detail", args=[tenant.pk]) + "#moves")
