"""Tenant workspace pages. Every view runs inside the tenant's context (tenants.middleware)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.core.validators import validate_email
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ApplicationError, NotFound
from core.http import TenantRequest, client_ip
from workspace import members, selectors, services
from workspace.auth import current_member, member_login, member_logout, member_required
from workspace.forms import AccountForm, ForgotPasswordForm, LoginForm, MemberForm, SetPasswordForm
from workspace.models import Account, PrivacyIntake
from workspace.services import LinkPurpose

PAGE_SIZE = 25


def home(request: TenantRequest) -> HttpResponse:
    return redirect("workspace:members" if current_member(request) else "workspace:login")


def _links(request: TenantRequest) -> members.Links:
    """Links in emails point at the host this request came to: the tenant's own (the token is bound to it too)."""
    return members.Links(
        workspace=request.tenant.name,
        url=lambda token: request.build_absolute_uri(reverse("workspace:set_password", args=[token])),
    )


@require_http_methods(["GET", "POST"])
def login(request: TenantRequest) -> HttpResponse:
    form = LoginForm(request.POST or None)
    error, status = "", 200
    if request.method == "POST" and form.is_valid():
        try:
            member = members.member_sign_in(
                email=form.cleaned_data["email"], password=form.cleaned_data["password"], address=client_ip(request)
            )
        except members.SignInThrottled as exc:
            error, status = str(exc), 429
        else:
            if member is not None:
                member_login(request, member)
                target = request.GET.get("next", "")
                if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                    target = "/members/"
                return redirect(target or "/members/")
            error, status = "That email and password do not match a member of this workspace.", 401
    elif request.method == "POST":
        error, status = "Please give your email address and password.", 400
    return render(request, "workspace/login.html", {"form": form, "error": error}, status=status)


@require_POST
def logout(request: TenantRequest) -> HttpResponse:
    member_logout(request)
    return redirect("workspace:login")


@require_http_methods(["GET", "POST"])
def forgot_password(request: TenantRequest) -> HttpResponse:
    form = ForgotPasswordForm(request.POST or None)
    error, status, sent = "", 200, False
    if request.method == "POST" and form.is_valid():
        try:
            members.password_reset_request(
                email=form.cleaned_data["email"], address=client_ip(request), links=_links(request)
            )
        except ApplicationError as exc:  # too many requests (429), or the mail server is down (503)
            error, status = str(exc), exc.status
        else:
            sent = True
    elif request.method == "POST":
        error, status = "Please give a valid email address.", 400
    context = {"form": form, "error": error, "sent": sent}
    return render(request, "workspace/forgot_password.html", context, status=status)


@require_http_methods(["GET", "POST"])
def set_password(request: TenantRequest, token: str) -> HttpResponse:
    found = members.member_for_link(token)
    if found is None:
        return render(request, "workspace/set_password_invalid.html", status=404)
    member, purpose = found
    form = SetPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        members.member_password_set(member=member, purpose=purpose, password=form.cleaned_data["password"])
        member_login(request, member)
        messages.success(request, "Your password is set. Welcome!")
        return redirect("workspace:members")
    context = {"form": form, "member": member, "reset": purpose == LinkPurpose.RESET}
    return render(request, "workspace/set_password.html", context, status=400 if request.method == "POST" else 200)


def _page(request: TenantRequest, qs):
    return Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))


@member_required
def member_list(request: TenantRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    page = _page(request, selectors.member_list(search=search))
    template = "workspace/members.html#table" if request.htmx else "workspace/members.html"
    return render(request, template, {"page": page, "q": search, "form": MemberForm(), "section": "members"})


def _forbidden(request: TenantRequest) -> HttpResponse:
    return render(request, "workspace/forbidden.html", status=403)


@member_required
@require_POST
def member_new(request: TenantRequest) -> HttpResponse:
    """Invite a member by email (admins)."""
    if not request.member.is_admin:
        return _forbidden(request)
    form = MemberForm(request.POST)
    if form.is_valid():
        try:
            member = members.member_invite(actor=request.member, links=_links(request), **form.cleaned_data)
        except ApplicationError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{member.name} was invited; the email is on its way to {member.email}.")
    else:
        messages.error(request, "Please give a name and a valid email address.")
    return redirect("workspace:members")


@member_required
def member_detail(request: TenantRequest, pk: int) -> HttpResponse:
    member = members.member_get(pk)
    locks = members.member_locks(member) if request.member.is_admin else []
    context = {"subject": member, "locks": locks, "section": "members"}
    return render(request, "workspace/member_detail.html", context)


def _admin_action(request: TenantRequest, pk: int, action: str) -> HttpResponse:
    if not request.member.is_admin:
        return _forbidden(request)
    try:
        if action == "resend":
            subject = members.member_invite_resend(actor=request.member, member_id=pk, links=_links(request))
            done = f"A new invitation was sent to {subject.email}; earlier links no longer work."
        elif action == "revoke":
            subject = members.member_invite_revoke(actor=request.member, member_id=pk)
            done = f"The invitation of {subject.email} was revoked."
        elif action == "role":
            role = request.POST.get("role", "")
            if role not in ("admin", "member"):
                messages.error(request, "Choose admin or member.")
                return redirect("workspace:member_detail", pk=pk)
            subject = members.member_set_role(actor=request.member, member_id=pk, is_admin=role == "admin")
            done = f"{subject.name} is now {'an admin' if subject.is_admin else 'a member'}."
        elif action == "unlock":
            subject = members.member_unlock(actor=request.member, member_id=pk)
            done = f"{subject.name} may sign in again from every address."
        else:
            subject = members.member_remove(actor=request.member, member_id=pk)
            done = f"{subject.name} was removed and signed out."
    except NotFound:
        raise  # the 404 page, like any other missing member
    except ApplicationError as exc:
        messages.error(request, str(exc))
        return redirect("workspace:member_detail", pk=pk)
    messages.success(request, done)
    if action in ("revoke", "remove"):
        return redirect("workspace:members")
    return redirect("workspace:member_detail", pk=pk)


@member_required
@require_POST
def member_resend(request: TenantRequest, pk: int) -> HttpResponse:
    return _admin_action(request, pk, "resend")


@member_required
@require_POST
def member_revoke(request: TenantRequest, pk: int) -> HttpResponse:
    return _admin_action(request, pk, "revoke")


@member_required
@require_POST
def member_role(request: TenantRequest, pk: int) -> HttpResponse:
    return _admin_action(request, pk, "role")


@member_required
@require_POST
def member_unlock(request: TenantRequest, pk: int) -> HttpResponse:
    return _admin_action(request, pk, "unlock")


@member_required
@require_POST
def member_remove(request: TenantRequest, pk: int) -> HttpResponse:
    return _admin_action(request, pk, "remove")


@member_required
def account_list(request: TenantRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    page = _page(request, selectors.account_list(search=search))
    template = "workspace/accounts.html#table" if request.htmx else "workspace/accounts.html"
    return render(request, template, {"page": page, "q": search, "form": AccountForm(), "section": "accounts"})


@member_required
@require_POST
def account_new(request: TenantRequest) -> HttpResponse:
    form = AccountForm(request.POST)
    if form.is_valid():
        try:
            account = services.account_open(**form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Account {account.name} was opened.")
    else:
        messages.error(request, "Please give the account a name and a three-letter currency.")
    return redirect("workspace:accounts")


@member_required
def account_detail(request: TenantRequest, pk: int) -> HttpResponse:
    account = Account.objects.filter(pk=pk).first()
    if account is None:
        raise Http404("No such account in this workspace.")
    return render(request, "workspace/account_detail.html", {"account": account, "section": "accounts"})


@require_http_methods(["GET", "POST"])
@member_required
def privacy_requests(request: TenantRequest) -> HttpResponse:
    """Workspace admins file access requests for a person in this workspace and follow them."""
    if not request.member.is_admin:
        return render(request, "workspace/forbidden.html", status=403)
    if request.method == "POST":
        email = request.POST.get("email", "").strip().lower()[:254]
        try:
            validate_email(email)
        except ValidationError:
            messages.error(request, "Please give the person's email address.")
        else:
            PrivacyIntake.objects.create(email=email, kind="access", requested_by_member=request.member.pk)
            messages.success(
                request, "Request filed; the 30-day clock starts when the provider takes it (within minutes)."
            )
        return redirect("workspace:privacy")
    page = _page(request, PrivacyIntake.objects.all())
    return render(request, "workspace/privacy.html", {"page": page, "section": "privacy"})
