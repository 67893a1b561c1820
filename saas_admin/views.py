"""Dashboard shell: overview, sign-in/out, operators, personal API tokens, /healthz."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import overview
from core.errors import ApplicationError, NotFound
from core.http import OperatorRequest
from core.middleware import bad_request
from core.permissions import Role, has_role, reader_required, role_required
from saas_admin import devmail, mfa, selectors, services
from saas_admin.forms import (
    ROLE_HELP,
    OperatorCreateForm,
    OperatorLoginForm,
    RoleChangeForm,
    TokenCreateForm,
    role_from_choice,
)
from saas_admin.health import broker_status, database_status


@require_GET
def healthz(request: OperatorRequest) -> JsonResponse:
    """Unauthenticated liveness for load balancers: 200 when database and broker answer, else 503."""
    db_ok, db_detail = database_status()
    broker_ok, broker_detail = broker_status()
    healthy = db_ok and broker_ok
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", "database": db_detail, "broker": broker_detail},
        status=200 if healthy else 503,
    )


# --- Sign-in ----------------------------------------------------------------------


class SignInView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = OperatorLoginForm
    redirect_authenticated_user = True


class SignOutView(auth_views.LogoutView):
    http_method_names = ["post", "options"]


# --- Overview ---------------------------------------------------------------------


@reader_required
def home(request: OperatorRequest) -> HttpResponse:
    if not has_role(request.user, Role.VIEWER):  # an Auditor: compliance, audit and events only
        return redirect("compliance:list")
    return render(request, "dashboard/home.html", {"panels": overview.panels_for(request)})


# --- Operators (Admin) ------------------------------------------------------------


def _secret_response(request: OperatorRequest, template: str, context: dict) -> HttpResponse:
    """A page showing a one-time secret: never stored by browsers or proxies."""
    response = render(request, template, context)
    add_never_cache_headers(response)
    return response


@role_required(Role.ADMIN)
def operator_list(request: OperatorRequest) -> HttpResponse:
    return render(
        request,
        "operators/list.html",
        {
            "operators": selectors.operator_list(),
            "form": OperatorCreateForm(),
            "role_form": RoleChangeForm(),
            "role_help": [(role.group_name, ROLE_HELP[role]) for role in sorted(Role, reverse=True)],
        },
    )


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def operator_create(request: OperatorRequest) -> HttpResponse:
    form = OperatorCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = services.operator_create(
                actor=request.user,
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                role=role_from_choice(form.cleaned_data["role"]),
                request=request,
            )
        except ApplicationError as exc:
            form.add_error(None, str(exc))
        else:
            # Rendered, not redirected: the one-time password must not be stored anywhere to survive a redirect.
            return _secret_response(
                request,
                "operators/password.html",
                {"subject": created.user, "password": created.password, "created": True},
            )
    status = 400 if request.method == "POST" else 200
    return render(request, "operators/create.html", {"form": form}, status=status)


def _operator_action(request: OperatorRequest, action, success: str, **kwargs) -> HttpResponse:
    try:
        user = action(actor=request.user, request=request, **kwargs)
    except NotFound:
        raise  # the 404 page
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, success.format(user=user))
    return redirect("dashboard:operators")


@role_required(Role.ADMIN)
@require_POST
def operator_change_role(request: OperatorRequest, user_id: int) -> HttpResponse:
    form = RoleChangeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles Viewer, Operator or Admin.")
        return redirect("dashboard:operators")
    role = role_from_choice(form.cleaned_data["role"])
    return _operator_action(
        request,
        services.operator_change_role,
        f"{{user.username}} now has the {role.group_name} role.",
        user_id=user_id,
        role=role,
    )


@role_required(Role.ADMIN)
@require_POST
def operator_deactivate(request: OperatorRequest, user_id: int) -> HttpResponse:
    return _operator_action(
        request,
        services.operator_set_active,
        "{user.username} is deactivated and their API tokens are revoked.",
        user_id=user_id,
        active=False,
    )


@role_required(Role.ADMIN)
@require_POST
def operator_activate(request: OperatorRequest, user_id: int) -> HttpResponse:
    return _operator_action(
        request, services.operator_set_active, "{user.username} is active again.", user_id=user_id, active=True
    )


@role_required(Role.ADMIN)
@require_POST
def operator_unlock(request: OperatorRequest, user_id: int) -> HttpResponse:
    return _operator_action(
        request,
        services.operator_unlock,
        "{user.username} is unlocked: every address may try to sign in again.",
        user_id=user_id,
    )


@role_required(Role.ADMIN)
@require_POST
def operator_reset_mfa(request: OperatorRequest, user_id: int) -> HttpResponse:
    return _operator_action(
        request,
        mfa.operator_mfa_reset,
        "{user.username}'s two-factor devices are removed; they enrol again at their next sign-in.",
        user_id=user_id,
    )


@role_required(Role.ADMIN)
@require_POST
def operator_reset_password(request: OperatorRequest, user_id: int) -> HttpResponse:
    try:
        result = services.operator_reset_password(actor=request.user, user_id=user_id, request=request)
    except NotFound:
        raise  # the 404 page
    except ApplicationError as exc:
        messages.error(request, str(exc))
        return redirect("dashboard:operators")
    return _secret_response(
        request, "operators/password.html", {"subject": result.user, "password": result.password, "created": False}
    )


# --- Personal API tokens (every operator; Admins also see and revoke everyone's) -------


def _token_page(request: OperatorRequest, form: TokenCreateForm, *, created=None, status: int = 200) -> HttpResponse:
    is_admin = has_role(request.user, Role.ADMIN)
    return render(
        request,
        "dashboard/tokens.html",
        {
            "tokens": selectors.token_list_for(user=request.user),
            "other_tokens": selectors.token_list_all().exclude(user=request.user) if is_admin else None,
            "form": form,
            "created": created,
        },
        status=status,
    )


@role_required(Role.VIEWER)
def token_list(request: OperatorRequest) -> HttpResponse:
    return _token_page(request, TokenCreateForm())


@role_required(Role.VIEWER)
@require_POST
def token_create(request: OperatorRequest) -> HttpResponse:
    form = TokenCreateForm(request.POST)
    if form.is_valid():
        try:
            created = services.token_create(
                actor=request.user,
                name=form.cleaned_data["name"],
                expires_in_days=form.expires_in_days(),
                scope=form.cleaned_data["scope"],
                request=request,
            )
        except ApplicationError as exc:
            form.add_error(None, str(exc))
        else:
            # Shown once, in this response only.
            response = _token_page(request, TokenCreateForm(), created=created)
            add_never_cache_headers(response)
            return response
    return _token_page(request, form, status=400)


@role_required(Role.VIEWER)
@require_POST
def token_revoke(request: OperatorRequest, token_id: int) -> HttpResponse:
    try:
        token = services.token_revoke(actor=request.user, token_id=token_id, request=request)
    except NotFound:
        raise  # the 404 page
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Token “{token.name}” is revoked; it stops working immediately.")
    return redirect("dashboard:tokens")


# --- Development Outbox (exists only with the development mailbox backend) ----------------------


@role_required(Role.VIEWER)
def outbox(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/outbox.html", {"mails": devmail.mailbox_list()})


@role_required(Role.VIEWER)
def outbox_mail(request: HttpRequest, mail_id: str) -> HttpResponse:
    mail = devmail.mailbox_get(mail_id)
    if mail is None:
        raise NotFound("No such email in the development mailbox.")
    return render(request, "dashboard/outbox.html", {"mails": devmail.mailbox_list(), "mail": mail})


def bad_request_page(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """400 raised outside any view (a Host header this server does not answer to, a malformed
    cookie or upload): `{"detail": …}` under /api/, as the OpenAPI document says, the 400 page elsewhere."""
    if isinstance(exception, DisallowedHost):
        return bad_request(request, "The Host header names no address this server answers to.")
    return bad_request(request, "The request could not be understood.")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: `{"detail": …}` under /api/, the 404 page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "There is no such API path."}, status=404)
    from django.views.defaults import page_not_found  # only for the HTML case

    return page_not_found(request, exception)
