"""Writes to the control plane's event log (HackSoft style: keyword-only service functions)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection, transaction

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import SYSTEM, Actor, actor_label
from events import projections
from events.models import ProjectionRebuild
from events.store import ANY, EventStore, EventStoreError
from jobs.models import Job
from jobs.registry import JobContext, JobHandler, register
from jobs.services import job_create


def control_store() -> EventStore:
    return EventStore.control()


def control_event_append(
    *,
    aggregate_type: str,
    aggregate_id: str,
    event_type: str,
    data: dict,
    metadata: dict | None = None,
    causation_id: Any = None,
    correlation_id: Any = None,
    expected_version: int | None = ANY,
    tenant_id: uuid.UUID | str | None = None,
) -> Any:
    """Append one event to the control-plane log in `public`, inside the caller's transaction.

    `expected_version=None` appends after whatever the stream holds; an int
    is optimistic concurrency (0 = the stream must be new) and raises
    events.store.ConcurrencyError when another writer got there first.
    `causation_id` may be an Event or its event_uuid; `tenant_id` tags the
    event for the viewer's tenant filter (defaults to aggregate_id when the
    aggregate is a tenant).
    """
    store = control_store()
    if tenant_id is None and aggregate_type == "tenant":
        tenant_id = aggregate_id
    try:
        store.tenant_id = uuid.UUID(str(tenant_id)) if tenant_id else None
    except ValueError:
        store.tenant_id = None
    return store.append(
        aggregate_type,
        str(aggregate_id),
        event_type,
        data,
        metadata=metadata,
        causation_id=causation_id,
        correlation_id=correlation_id,
        expected_version=expected_version,
    )


# --- projections -------------------------------------------------------------------

REBUILD = "events.projection_rebuild"


def projection_rebuild_start(
    *, projection: str, tenant: Any = None, actor: Actor = SYSTEM, request: Any = None, batch_size: int = 1000
) -> ProjectionRebuild:
    """Queue a rebuild of `projection` from an empty state (a job with progress); one at a time per projection."""
    spec = projections.get(projection)
    if spec.tenant_scoped and tenant is None:
        raise EventStoreError(f"Projection {projection} is per tenant; choose a tenant.")
    tenant_id = getattr(tenant, "pk", tenant) if spec.tenant_scoped else None
    with transaction.atomic():
        active = (
            ProjectionRebuild.objects.select_related("job")
            .filter(projection=projection, tenant_id=tenant_id, job__state__in=Job.OPEN)
            .first()
        )
        if active is not None:
            return active
        rebuild = ProjectionRebuild.objects.create(
            projection=projection, tenant_id=tenant_id, requested_by=actor_label(actor)
        )
        rebuild.job = job_create(
            kind=REBUILD,
            payload={"rebuild_id": rebuild.pk, "batch_size": max(1, min(int(batch_size), 100_000))},
            actor=actor,
        )
        rebuild.save(update_fields=["job"])
        audit_record(
            actor=actor,
            action=AuditAction.PROJECTION_REBUILD,
            target_type="projection",
            target_id=projection,
            summary=f"Rebuild of projection {projection} requested.",
            request=request,
            details={
                "rebuild_id": rebuild.pk,
                "job_id": rebuild.job.pk,
                "tenant_id": str(tenant_id) if tenant_id else None,
            },
        )
    return rebuild


@register
class ProjectionRebuildJob(JobHandler):
    """Empty the projection, rewind its checkpoint, replay the whole log with progress.

    Safe to run again (a redelivered or retried job simply starts over, which a rebuild may always do)."""

    kind = REBUILD
    title = "Projection rebuild"

    def run(self, ctx: JobContext) -> dict[str, Any]:
        rebuild = ProjectionRebuild.objects.get(pk=ctx.payload["rebuild_id"])
        batch_size = int(ctx.payload.get("batch_size") or 1000)
        spec = projections.get(rebuild.projection)
        store = spec.store(rebuild.tenant_id)
        total = store.estimated_count()
        ctx.progress(0, total)
        name = projections.checkpoint_name(spec)
        with store.session() as alias, transaction.atomic(using=alias):
            fields = {"tenant_id": store.tenant_id} if store.tenant_scoped else {}
            store.checkpoint_model.objects.using(alias).get_or_create(name=name, **fields)
            store.checkpoint_model.objects.using(alias).select_for_update().filter(name=name, **fields).update(
                tx_id=0, event_id=0, processed=0
            )
            spec.reset(alias, store)
        processed = 0
        while True:
            n = store.consume(name, spec.handle, batch_size=batch_size)
            processed += n
            ctx.progress(processed, max(total, processed))
            if n < batch_size:
                break
        ctx.progress(processed, processed)
        return {"processed": processed}


def projections_catch_up_all() -> int:
    """Periodic: run every control-plane projection until its feed is drained."""
    total = 0
    for name in projections.names():
        if not projections.get(name).tenant_scoped:
            total += projections.catch_up(name)
    if total:
        # One wake-up per poll, ids only, off the append path (see docs/events.md for the measurements).
        head = control_store().feed_head()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify('events', %s)", [f"control:{head[0]}:{head[1]}"])
    return total
