"""The `webhooks.deliver` job kind: one POST of one delivery per attempt, signed at send time.

2xx: delivered. 408, 429, 5xx, timeouts and connection errors: retried with exponential backoff
(WEBHOOK_BACKOFF_SECONDS · 2ⁿ⁻¹, at most six hours, + jitter) up to WEBHOOK_MAX_ATTEMPTS; any other
4xx is the receiver refusing the request, so retrying cannot help: failed at once. Every attempt is
written to the delivery log with its status code (or error) and duration. Delivery is at least once:
a worker dying after the POST and before recording it sends again; receivers deduplicate on
`Webhook-Id` (the event id, which replays keep too).
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import requests
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from jobs.models import Job
from jobs.registry import JobContext, JobHandler, PermanentError, register
from webhooks import signing
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.services import DELIVER, signing_secrets

RETRYABLE_STATUS = {408, 425, 429}
MAX_DELAY = 6 * 3600.0


class DeliveryFailed(Exception):
    """The receiver did not take it this time (retried)."""


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()


@register
class DeliverJob(JobHandler):
    kind = DELIVER
    title = "Webhook delivery"
    record_events = False  # the delivery log is the record; one control-plane event per attempt would be noise

    def attempts_allowed(self) -> int:
        return int(settings.WEBHOOK_MAX_ATTEMPTS)

    def retry_delay(self, attempt: int) -> float:
        delay = min(MAX_DELAY, float(settings.WEBHOOK_BACKOFF_SECONDS) * 2 ** max(0, attempt - 1))
        return delay * (1 + random.uniform(0, 0.1))

    def run(self, ctx: JobContext) -> dict[str, Any]:
        delivery = (
            WebhookDelivery.objects.select_related("endpoint")
            .filter(pk=int(ctx.payload.get("delivery_id") or 0))
            .first()
        )
        if delivery is None:
            raise PermanentError("The delivery no longer exists (its endpoint was deleted).")
        endpoint = delivery.endpoint
        body = body_of(delivery)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "control-plane-webhooks/1",
            "Webhook-Id": str(delivery.event_id),
            "Webhook-Event": delivery.event_type,
            signing.HEADER: signing.header_value(body, signing_secrets(endpoint)),
        }
        started = time.monotonic()
        status: int | None = None
        error = ""
        try:
            response = requests.post(
                endpoint.url,
                data=body,
                headers=headers,
                timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
            status = response.status_code
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        duration = int((time.monotonic() - started) * 1000)
        if status is not None and not 200 <= status < 300:
            error = f"The receiver answered {status}."
        WebhookAttempt.objects.create(
            delivery=delivery, attempt=ctx.attempt, status_code=status, error=error, duration_ms=duration
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            attempts=F("attempts") + 1, last_status_code=status, last_error=error
        )
        if status is not None and 200 <= status < 300:
            return {"status": status, "duration_ms": duration}
        if status is not None and 400 <= status < 500 and status not in RETRYABLE_STATUS:
            raise PermanentError(error)
        raise DeliveryFailed(error)

    def on_succeeded(self, job: Job, result: dict[str, Any]) -> None:
        WebhookDelivery.objects.filter(pk=job.payload.get("delivery_id")).update(
            state=WebhookDelivery.State.SUCCEEDED, delivered_at=timezone.now()
        )
        return None

    def on_failed(self, job: Job, error: str) -> None:
        WebhookDelivery.objects.filter(pk=job.payload.get("delivery_id")).update(
            state=WebhookDelivery.State.FAILED, last_error=error[:500]
        )

    def on_cancelled(self, job: Job, reason: str) -> None:
        WebhookDelivery.objects.filter(pk=job.payload.get("delivery_id")).update(
            state=WebhookDelivery.State.FAILED, last_error=(reason or "Cancelled.")[:500]
        )
