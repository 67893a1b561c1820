"""Public self-signup pages (on the bare BASE_DOMAIN) and the welcome hand-over (on the tenant host).

No permission checks beyond what each step proves: the verification link proves the email,
the signed progress link proves it came from that link, the one-time welcome link signs in
exactly the owner of exactly that tenant.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from core.http import HtmxRequest, TenantRequest, client_ip
from sagas.models import SagaState
from sagas.registry import saga_definition
from sagas.selectors import saga_progress
from tenants import signup_services as services
from tenants.forms import SignupForm
from tenants.models import Tenant
from tenants.validation import validate_slug
from workspace import interface as workspace

PLAN_HELP = {
    "free": "Shared infrastructure, isolated by row-level security.",
    "team": "Shared infrastructure, isolated by row-level security.",
    "business": "Your own database schema.",
    "enterprise": "Your own database.",
}


@require_http_methods(["GET", "POST"])
def signup(request: HtmxRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    request_key = request.POST.get("request_key") or str(uuid.uuid4())
    try:
        request_key = str(uuid.UUID(request_key))
    except ValueError:
        request_key = str(uuid.uuid4())
    error = ""
    if request.method == "POST" and form.is_valid():
        if services.signup_rate_limited(client_ip(request)):
            error = "Too many signups from your network; please try again in an hour."
        else:
            services.signup_request(
                data=form.cleaned_data,
                request_key=request_key,
                verify_url=lambda token: request.build_absolute_uri(reverse("signup:verify", args=[token])),
            )
            request.session["signup_email"] = form.cleaned_data["email"]
            return redirect("signup:sent")  # POST/redirect/GET: a refresh never sends the form again
    status = 429 if error else (400 if request.method == "POST" else 200)
    context = {"form": form, "request_key": request_key, "error": error, "plans": PLAN_HELP}
    return render(request, "signup/form.html", context, status=status)


@require_GET
def slug_check(request: HtmxRequest) -> HttpResponse:
    """Live availability check for the slug field (htmx): one sentence, green or red."""
    slug = request.GET.get("slug", "").strip().lower()
    ok, message = False, ""
    if slug:
        try:
            validate_slug(slug)
            if Tenant.objects.filter(slug=slug).exists():
                message = f"The address “{slug}” is already taken; please choose another."
            else:
                ok, message = True, f"{slug}.localhost is available."
        except ValidationError as exc:
            message = exc.messages[0]
    return render(request, "signup/form.html#slug-status", {"slug_ok": ok, "slug_message": message})


@require_GET
def sent(request: HtmxRequest) -> HttpResponse:
    return render(request, "signup/sent.html", {"email": request.session.get("signup_email", "")})


@require_GET
def verify(request: HtmxRequest, token: str) -> HttpResponse:
    try:
        saga = services.signup_verify(token=token)
    except services.SignupError as exc:
        return render(request, "signup/problem.html", {"message": str(exc)}, status=400)
    return redirect("signup:progress", token=services.progress_token(saga))


def _steps(saga) -> list[dict]:
    titles = {s.name: s.description or s.name.replace("_", " ") for s in saga_definition(saga.saga_type).steps}
    return [{"title": titles.get(s.name, s.name), "state": s.state} for s in saga.steps.all()]


@require_GET
def progress(request: HtmxRequest, token: str) -> HttpResponse:
    saga = services.saga_for_progress_token(token)
    if saga is None:
        return render(request, "signup/problem.html", {"message": "This progress link is not valid."}, status=404)
    context = {
        "saga": saga,
        "steps": _steps(saga),
        "progress": saga_progress(saga),
        "token": token,
        "done": saga.state == SagaState.COMPLETED,
        "failed": saga.state in (SagaState.COMPENSATED, SagaState.FAILED),
        "reason": saga.error.splitlines()[0] if saga.error else "",
    }
    if saga.state == SagaState.COMPLETED:
        context["welcome_url"] = services.welcome_url(saga)
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = str(context["welcome_url"])
            return response
    template = "signup/progress.html#progress-live" if request.htmx else "signup/progress.html"
    return render(request, template, context)


@require_GET
def welcome(request: TenantRequest, token: str) -> HttpResponse:
    """On the tenant host: sign the new owner in once, then open the workspace."""
    tenant = getattr(request, "tenant", None)
    email = services.welcome_consume(token=token, tenant=tenant)
    if not email or not workspace.member_sign_in(request, email=email):
        return redirect("workspace:login")  # an old or reused link: the normal sign-in page
    return redirect("workspace:members")
