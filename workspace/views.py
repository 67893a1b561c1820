"""Tenant workspace pages. Every view runs inside the tenant's context (tenants.middleware)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.core.validators import validate_email
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from core.http import TenantRequest
from workspace import selectors, services
from workspace.auth import current_member, member_login, member_logout, member_required
from workspace.forms import AccountForm, LoginForm, MemberForm, SetPasswordForm
from workspace.models import Account, Member, PrivacyIntake

PAGE_SIZE = 25


def home(request: TenantRequest) -> HttpResponse:
    return redirect("workspace:members" if current_member(request) else "workspace:login")


@require_http_methods(["GET", "POST"])
def login(request: TenantRequest) -> HttpResponse:
    form = LoginForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        member = services.member_authenticate(email=form.cleaned_data["email"], password=form.cleaned_data["password"])
        if member is not None:
            member_login(request, member)
            target = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = "/members/"
            return redirect(target or "/members/")
        error = "That email and password do not match a member of this workspace."
    return render(request, "workspace/login.html", {"form": form, "error": error}, status=200 if not error else 401)


@require_POST
def logout(request: TenantRequest) -> HttpResponse:
    member_logout(request)
    return redirect("workspace:login")


@require_http_methods(["GET", "POST"])
def set_password(request: TenantRequest, token: str) -> HttpResponse:
    member = services.member_for_set_password_token(token)
    if member is None:
        return render(request, "workspace/set_password_invalid.html", status=404)
    form = SetPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        member.set_password(form.cleaned_data["password"])
        member.save(update_fields=["password"])
        member_login(request, member)
        messages.success(request, "Your password is set. Welcome!")
        return redirect("workspace:members")
    return render(request, "workspace/set_password.html", {"form": form, "member": member})


def _page(request: TenantRequest, qs):
    return Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))


@member_required
def member_list(request: TenantRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    page = _page(request, selectors.member_list(search=search))
    template = "workspace/members.html#table" if request.htmx else "workspace/members.html"
    return render(request, template, {"page": page, "q": search, "form": MemberForm(), "section": "members"})


@member_required
@require_POST
def member_new(request: TenantRequest) -> HttpResponse:
    if not request.member.is_admin:
        return render(request, "workspace/forbidden.html", status=403)
    form = MemberForm(request.POST)
    if form.is_valid():
        try:
            member = services.member_create(**form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"{member.name} was added.")
    else:
        messages.error(request, "Please give a name and a valid email address.")
    return redirect("workspace:members")


@member_required
def member_detail(request: TenantRequest, pk: int) -> HttpResponse:
    member = Member.objects.filter(pk=pk).first()
    if member is None:
        raise Http404("No such member in this workspace.")
    return render(request, "workspace/member_detail.html", {"subject": member, "section": "members"})


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
