"""From the control-plane event log to webhook deliveries: an async consumer with a durable checkpoint.

Lifecycle events are already appended to the control-plane log in the transaction that makes the
change (tenant status changes, provisioning, migration runs, quota warnings, usage records). This
consumer follows the log's gap-safe feed (events.projections, caught up by beat every few seconds)
and, in the same transaction that advances its checkpoint, creates one delivery job per endpoint
that wants the event — so an event is dispatched exactly once, even if a worker dies mid-batch, and
nothing on the hot path waits for an HTTP call.

Moves and deletion append `TenantMoved` / `TenantDeleted`; a compliance control that turns failing
appends `ControlFailing` (once per change, compliance.services.result_record).
Only events that occur after an endpoint was created are sent to it.
"""

from __future__ import annotations

from typing import Any

from events import projections
from events.store import EventStore
from sagas.models import Saga
from tenants.models import Tenant
from webhooks.models import WebhookEndpoint
from webhooks.services import deliveries_create

NAME = "webhooks.dispatch"
# control-plane event type → webhook event type
MAPPING = {
    "TenantActivated": "tenant.provisioned",
    "TenantSuspended": "tenant.suspended",
    "TenantResumed": "tenant.resumed",
    "TenantMoved": "tenant.moved",
    "TenantRenamed": "tenant.renamed",
    "TenantDeleted": "tenant.deleted",
    "MigrationRunFinished": "migration_run.finished",
    "ControlFailing": "compliance.control_failing",
    "QuotaWarningRaised": "tenant.quota_warning",
    "UsageRecorded": "usage.recorded",
}


def webhook_event(event: Any) -> tuple[str, dict[str, Any]] | None:
    """(webhook type, data) for a control-plane event, or None when no webhook is about it."""
    data = dict(event.event_data or {})
    if event.event_type == "SagaCompleted" and event.aggregate_type == "saga":
        saga = Saga.objects.filter(pk=event.aggregate_id).only("idempotency_key", "tenant_id", "tenant_label").first()
        if saga is None or not (saga.idempotency_key or "").startswith("signup:"):
            return None
        return "signup.completed", {"tenant_id": str(saga.tenant_id), "tenant_slug": saga.tenant_label}
    kind = MAPPING.get(event.event_type)
    if kind is None:
        return None
    if event.aggregate_type in ("tenant", "tenant_usage"):
        data["tenant_id"] = event.aggregate_id
        slug = Tenant.objects.filter(pk=event.aggregate_id).values_list("slug", flat=True).first()
        if slug:
            data.setdefault("tenant_slug", slug)
    elif event.aggregate_type == "migration_run":
        data["run_id"] = event.aggregate_id
    return kind, data


def _handle(alias: str, events: list[Any]) -> None:
    if not WebhookEndpoint.objects.filter(is_active=True).exists():
        return
    oldest = WebhookEndpoint.objects.filter(is_active=True).order_by("created_at").values_list("created_at", flat=True)
    since = oldest.first()
    for event in events:
        if since is not None and event.occurred_at < since:
            continue
        found = webhook_event(event)
        if found is None:
            continue
        kind, data = found
        payload = {
            "id": str(event.event_uuid),
            "type": kind,
            "occurred_at": event.occurred_at.isoformat(),
            "data": data,
        }
        deliveries_create(event_type=kind, event_id=event.event_uuid, payload=payload, occurred_at=event.occurred_at)


def _reset(alias: str, store: EventStore) -> None:
    """A rebuild replays the log; deliveries are unique per (endpoint, event), so nothing is sent twice."""


projections.register(
    projections.Projection(name=NAME, store=lambda tenant: EventStore.control(), handle=_handle, reset=_reset)
)
