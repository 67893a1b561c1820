"""Webhook endpoints and deliveries: every change by an Admin, audited in its transaction.

    endpoint, secret = endpoint_create(url=…, events=["tenant.suspended"], actor=request.user)
    secret = secret_rotate(endpoint=endpoint, actor=request.user)   # the old one signs for 24 h more
    delivery_replay(delivery=d, actor=request.user)                  # same event id, a new delivery

Secrets are shown once (the return value) and kept encrypted at rest (tenants.crypto).
"""

from __future__ import annotations

import secrets as random_secrets
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, actor_label
from core.errors import Conflict, InvalidInput
from jobs.services import job_create
from tenants.crypto import decrypt_json, encrypt_json
from webhooks.models import WebhookDelivery, WebhookEndpoint

DELIVER = "webhooks.deliver"
# Every webhook event type, with what triggers it (webhooks.dispatch maps control-plane events to these).
EVENT_TYPES = {
    "tenant.provisioned": "a tenant's provisioning completed (it is active)",
    "tenant.suspended": "an operator suspended a tenant",
    "tenant.resumed": "a suspended tenant is active again",
    "tenant.moved": "a tenant moved to another isolation level or server",
    "tenant.renamed": "a tenant's slug and primary domain changed (the old host redirects for a while)",
    "tenant.deleted": "a tenant was deleted (offboarding finished)",
    "signup.completed": "a self-signup's provisioning completed",
    "migration_run.finished": "a cross-tenant migration run finished",
    "compliance.control_failing": "a compliance control's check failed",
    "tenant.quota_warning": "a tenant reached 80 % or 100 % of a plan quota",
    "usage.recorded": "a tenant's daily usage record was written (billing)",
}


def _validate(url: Any, events: Any, description: Any) -> tuple[str, list[str], str]:
    if not isinstance(url, str) or not isinstance(description, str):
        raise InvalidInput("The URL and the description must be text.")
    if "\x00" in url or "\x00" in description or any("\x00" in str(e) for e in events or []):
        raise InvalidInput("The input must not contain NUL characters.")
    url = url.strip()
    if len(url) > 500:
        raise InvalidInput("The URL must be at most 500 characters.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("The URL must start with http:// or https:// and name a host.")
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise InvalidInput("Events must be a list of event type names.")
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(f"Unknown event type {unknown[0][:64]!r}; see the list of event types.")
    description = (description or "").strip()
    if len(description) > 200:
        raise InvalidInput("The description must be at most 200 characters.")
    return url, sorted(set(events)), description


def new_secret() -> str:
    return "whsec_" + random_secrets.token_urlsafe(32)


def endpoint_create(
    *, url: str, events: list[str], description: str = "", actor: Actor, request: Any = None
) -> tuple[WebhookEndpoint, str]:
    url, events, description = _validate(url, events, description)
    secret = new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            url=url,
            events=events,
            description=description,
            secret_encrypted=encrypt_json({"secret": secret}),
            created_by_label=actor_label(actor),
        )
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_CREATE,
            target_type="webhook",
            target_id=endpoint.pk,
            summary=f"Added webhook endpoint {url}",
            request=request,
            details={"events": events},
        )
    return endpoint, secret


def endpoint_update(
    *, endpoint: WebhookEndpoint, url: str, events: list[str], description: str, is_active: bool,
    actor: Actor, request: Any = None,
) -> WebhookEndpoint:  # fmt: skip
    url, events, description = _validate(url, events, description)
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            url=url, events=events, description=description, is_active=bool(is_active), updated_at=timezone.now()
        )
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_UPDATE,
            target_type="webhook",
            target_id=endpoint.pk,
            summary=f"Changed webhook endpoint {url}",
            request=request,
            details={"events": events, "active": bool(is_active)},
        )
    endpoint.refresh_from_db()
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor, request: Any = None) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_DELETE,
            target_type="webhook",
            target_id=endpoint.pk,
            summary=f"Deleted webhook endpoint {endpoint.url}",
            request=request,
        )
        endpoint.delete()


def secret_rotate(*, endpoint: WebhookEndpoint, actor: Actor, request: Any = None) -> str:
    """A new secret signs from now on; the current one keeps signing for WEBHOOK_SECRET_OVERLAP_HOURS."""
    secret = new_secret()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret_encrypted = locked.secret_encrypted
        locked.previous_secret_expires_at = timezone.now() + timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
        locked.secret_encrypted = encrypt_json({"secret": secret})
        locked.save(update_fields=["previous_secret_encrypted", "previous_secret_expires_at", "secret_encrypted"])
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_ROTATE,
            target_type="webhook",
            target_id=endpoint.pk,
            summary=f"Rotated the secret of webhook endpoint {endpoint.url}",
            request=request,
        )
    endpoint.refresh_from_db()
    return secret


def signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    """The current secret, and the previous one while its overlap lasts."""
    found = [decrypt_json(endpoint.secret_encrypted)["secret"]]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and expires and expires > timezone.now():
        found.append(decrypt_json(endpoint.previous_secret_encrypted)["secret"])
    return found


def deliveries_create(
    *, event_type: str, event_id: uuid.UUID, payload: dict[str, Any], occurred_at: Any = None
) -> list[WebhookDelivery]:
    """One delivery (and its job) per active endpoint that wants this type; inside the caller's transaction.
    An endpoint created after the event gets nothing; one that already has it (a rebuilt consumer) gets no
    second delivery."""
    created = []
    for endpoint in WebhookEndpoint.objects.filter(is_active=True):
        if not endpoint.wants(event_type) or (occurred_at is not None and occurred_at < endpoint.created_at):
            continue
        delivery, new = WebhookDelivery.objects.get_or_create(
            endpoint=endpoint,
            event_id=event_id,
            replay_of=None,
            defaults={"event_type": event_type, "payload": payload},
        )
        if new:
            _schedule(delivery)
            created.append(delivery)
    return created


def _schedule(delivery: WebhookDelivery) -> None:
    job = job_create(
        kind=DELIVER,
        payload={"delivery_id": delivery.pk},
        group=("webhook_delivery", delivery.pk),
        max_attempts=int(settings.WEBHOOK_MAX_ATTEMPTS),
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(job_id=job.pk)
    delivery.job_id = job.pk


def delivery_replay(*, delivery: WebhookDelivery, actor: Actor, request: Any = None) -> WebhookDelivery:
    """Send the same event (same id and payload) to the same endpoint again, as a new delivery."""
    if delivery.state == WebhookDelivery.State.PENDING:
        raise Conflict("This delivery is still being attempted; replay it once it has succeeded or failed.")
    with transaction.atomic():
        replay = WebhookDelivery.objects.create(
            endpoint=delivery.endpoint,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            payload=delivery.payload,
            replay_of=delivery,
            replayed_by_label=actor_label(actor),
        )
        _schedule(replay)
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_REPLAY,
            target_type="webhook_delivery",
            target_id=delivery.pk,
            summary=f"Replayed {delivery.event_type} to {delivery.endpoint.url}",
            request=request,
            details={"replay": replay.pk},
        )
    return replay
