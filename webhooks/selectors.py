"""Access-scoped getters for webhooks: Admins only (endpoints carry secrets and reach other systems)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from core.errors import NotFound
from core.permissions import Role, check_role
from webhooks.models import WebhookDelivery, WebhookEndpoint


def endpoint_get(*, endpoint_id: Any, actor: Any) -> WebhookEndpoint:
    check_role(actor, Role.ADMIN)
    try:
        return WebhookEndpoint.objects.get(pk=int(endpoint_id))
    except (WebhookEndpoint.DoesNotExist, ValueError, TypeError, OverflowError, ValidationError):
        raise NotFound("No such webhook endpoint.") from None


def delivery_get(*, delivery_id: Any, actor: Any) -> WebhookDelivery:
    check_role(actor, Role.ADMIN)
    try:
        return WebhookDelivery.objects.select_related("endpoint").get(pk=int(delivery_id))
    except (WebhookDelivery.DoesNotExist, ValueError, TypeError, OverflowError, ValidationError):
        raise NotFound("No such webhook delivery.") from None


def deliveries(*, endpoint: WebhookEndpoint, state: str = "", event_type: str = "") -> QuerySet[WebhookDelivery]:
    qs = endpoint.deliveries.prefetch_related("attempt_log")
    if state in WebhookDelivery.State.values:
        qs = qs.filter(state=state)
    if event_type:
        qs = qs.filter(event_type=event_type[:64])
    return qs.order_by("-id")
