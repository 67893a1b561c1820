"""JSON API of webhooks, mounted at /api/webhooks/ (Admin only: endpoints carry secrets).

No `from __future__ import annotations`: ninja reads the annotations at runtime.
"""

import datetime as dt
import uuid

from ninja import Field, Query, Router, Schema, Status

from core.api import require_api_role
from core.permissions import Role
from webhooks import selectors, services
from webhooks.models import WebhookEndpoint

router = Router(tags=["webhooks"])


class EndpointIn(Schema):
    url: str = Field(..., max_length=500)
    events: list[str] = Field(default_factory=list, max_length=50)
    description: str = Field("", max_length=200)


class EndpointOut(Schema):
    id: int
    url: str
    events: list[str]
    description: str
    is_active: bool
    created_at: dt.datetime


class EndpointCreatedOut(EndpointOut):
    secret: str


class SecretOut(Schema):
    secret: str
    previous_secret_expires_at: dt.datetime | None


class AttemptOut(Schema):
    attempt: int
    status_code: int | None
    error: str
    duration_ms: int
    at: dt.datetime


class DeliveryOut(Schema):
    id: int
    event_id: uuid.UUID
    event_type: str
    state: str
    attempts: int
    last_status_code: int | None
    last_error: str
    replay_of_id: int | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    attempt_log: list[AttemptOut]


@router.get("/", response=list[EndpointOut], summary="Webhook endpoints (Admin)")
def endpoints(request):
    require_api_role(request, Role.ADMIN)
    return list(WebhookEndpoint.objects.all())


@router.post("/", response={201: EndpointCreatedOut}, summary="Add a webhook endpoint (Admin)")
def endpoint_create(request, payload: EndpointIn):
    """The signing secret is in the answer, once; it is stored encrypted and never shown again."""
    require_api_role(request, Role.ADMIN)
    endpoint, secret = services.endpoint_create(
        url=payload.url, events=payload.events, description=payload.description, actor=request.user, request=request
    )
    return Status(201, {**EndpointOut.from_orm(endpoint).dict(), "secret": secret})


@router.post("/{endpoint_id}/rotate", response=SecretOut, summary="Rotate an endpoint's signing secret (Admin)")
def endpoint_rotate(request, endpoint_id: int):
    require_api_role(request, Role.ADMIN)
    endpoint = selectors.endpoint_get(endpoint_id=endpoint_id, actor=request.user)
    secret = services.secret_rotate(endpoint=endpoint, actor=request.user, request=request)
    return {"secret": secret, "previous_secret_expires_at": endpoint.previous_secret_expires_at}


@router.get("/{endpoint_id}/deliveries", response=list[DeliveryOut], summary="An endpoint's delivery log (Admin)")
def deliveries(
    request,
    endpoint_id: int,
    state: str = Query("", max_length=20),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),
):
    require_api_role(request, Role.ADMIN)
    endpoint = selectors.endpoint_get(endpoint_id=endpoint_id, actor=request.user)
    return list(selectors.deliveries(endpoint=endpoint, state=state)[offset : offset + limit])


@router.post("/deliveries/{delivery_id}/replay", response={202: DeliveryOut}, summary="Send a delivery again (Admin)")
def replay(request, delivery_id: int):
    require_api_role(request, Role.ADMIN)
    delivery = selectors.delivery_get(delivery_id=delivery_id, actor=request.user)
    return Status(202, services.delivery_replay(delivery=delivery, actor=request.user, request=request))
