"""Admin screens for webhooks: endpoints (add, edit filters, pause, rotate the secret, delete) and each
endpoint's delivery log (status codes, attempts, errors) with a Replay button."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ApplicationError
from core.http import OperatorRequest
from core.permissions import Role, role_required
from webhooks import selectors, services
from webhooks.models import WebhookDelivery, WebhookEndpoint


def _form(request: OperatorRequest) -> dict[str, Any]:
    return {
        "url": request.POST.get("url", "")[:600],
        "events": request.POST.getlist("events")[:50],
        "description": request.POST.get("description", "")[:300],
    }


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def endpoint_list(request: OperatorRequest) -> HttpResponse:
    status = 200
    form: dict[str, Any] = {"url": "", "events": [], "description": ""}
    if request.method == "POST":
        form = _form(request)
        try:
            endpoint, secret = services.endpoint_create(**form, actor=request.user, request=request)
        except ApplicationError as exc:
            messages.error(request, str(exc))
            status = 400
        else:
            messages.success(request, f"Endpoint added. Its signing secret, shown only now: {secret}")
            return redirect("webhooks:detail", endpoint_id=endpoint.pk)
    context = {"endpoints": WebhookEndpoint.objects.all(), "event_types": services.EVENT_TYPES, "form": form}
    return render(request, "webhooks/list.html", context, status=status)


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def endpoint_detail(request: OperatorRequest, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(endpoint_id=endpoint_id, actor=request.user)
    if request.method == "POST":
        form = _form(request)
        try:
            services.endpoint_update(
                endpoint=endpoint, **form, is_active=request.POST.get("is_active") == "on", actor=request.user,
                request=request,
            )  # fmt: skip
        except ApplicationError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Endpoint saved.")
        return redirect("webhooks:detail", endpoint_id=endpoint.pk)
    state = request.GET.get("state", "")
    qs = selectors.deliveries(endpoint=endpoint, state=state)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    context = {
        "endpoint": endpoint,
        "page": page,
        "state": state,
        "states": WebhookDelivery.State.choices,
        "querystring": f"state={state}" if state in WebhookDelivery.State.values else "",
        "event_types": services.EVENT_TYPES,
    }
    return render(request, "webhooks/detail.html", context)


@require_POST
@role_required(Role.ADMIN)
def endpoint_rotate(request: OperatorRequest, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(endpoint_id=endpoint_id, actor=request.user)
    secret = services.secret_rotate(endpoint=endpoint, actor=request.user, request=request)
    messages.success(
        request, f"New signing secret, shown only now: {secret}. The previous one keeps signing for a while."
    )
    return redirect("webhooks:detail", endpoint_id=endpoint.pk)


@require_POST
@role_required(Role.ADMIN)
def endpoint_delete(request: OperatorRequest, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(endpoint_id=endpoint_id, actor=request.user)
    services.endpoint_delete(endpoint=endpoint, actor=request.user, request=request)
    messages.success(request, f"{endpoint.url} was deleted with its delivery log.")
    return redirect("webhooks:list")


@require_POST
@role_required(Role.ADMIN)
def delivery_replay(request: OperatorRequest, delivery_id: int) -> HttpResponse:
    delivery = selectors.delivery_get(delivery_id=delivery_id, actor=request.user)
    try:
        services.delivery_replay(delivery=delivery, actor=request.user, request=request)
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{delivery.event_type} is being sent again to {delivery.endpoint.url}.")
    return redirect("webhooks:detail", endpoint_id=delivery.endpoint_id)
