"""Writes to the control plane's event log (HackSoft style: keyword-only service functions)."""

from __future__ import annotations

import uuid
from typing import Any

from audit.actions import AuditAction
from audit.services import audit_record
from events.store import ANY, EventStore, EventStoreError


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


def tenant_store(tenant: Any) -> EventStore:
    """A tenant's own log inside its placement (Tenant instance or id)."""
    from events.tenantlog.store import store_for

    return store_for(tenant)


def store_for(tenant: Any = None) -> EventStore:
    return control_store() if tenant is None else tenant_store(tenant)


# --- projections -------------------------------------------------------------------
def projection_rebuild_start(*, projection: str, tenant: Any = None, actor: Any = None, request: Any = None) -> Any:
    """Queue a rebuild of `projection` from an empty state; progress is on the returned row."""
    from django.db import transaction

    from events import projections, tasks
    from events.models import ProjectionRebuild

    spec = projections.get(projection)
    if spec.tenant_scoped and tenant is None:
        raise EventStoreError(f"Projection {projection} is per tenant; choose a tenant.")
    tenant_id = getattr(tenant, "pk", tenant) if spec.tenant_scoped else None
    with transaction.atomic():
        active = ProjectionRebuild.objects.filter(
            projection=projection,
            tenant_id=tenant_id,
            status__in=[ProjectionRebuild.Status.PENDING, ProjectionRebuild.Status.RUNNING],
        ).first()
        if active is not None:
            return active
        rebuild = ProjectionRebuild.objects.create(
            projection=projection,
            tenant_id=tenant_id,
            requested_by=actor.get_username() if getattr(actor, "is_authenticated", False) else "system",
        )
        audit_record(
            actor=actor,
            action=AuditAction.PROJECTION_REBUILD,
            target_type="projection",
            target_id=projection,
            summary=f"Rebuild of projection {projection} requested.",
            request=request,
            details={"rebuild_id": rebuild.pk, "tenant_id": str(tenant_id) if tenant_id else None},
        )
        transaction.on_commit(lambda: tasks.projection_rebuild.delay(rebuild.pk))
    return rebuild


def projection_rebuild_run(*, rebuild_id: int, batch_size: int = 1000) -> None:
    """Worker side: empty the projection, rewind its checkpoint, replay the whole log with progress."""
    import logging

    from django.db import transaction
    from django.utils import timezone

    from events import projections
    from events.models import ProjectionRebuild

    Status = ProjectionRebuild.Status
    # Claim it; a redelivered job (worker died) simply starts over, which a rebuild may always do.
    claimed = ProjectionRebuild.objects.filter(pk=rebuild_id, status__in=[Status.PENDING, Status.RUNNING]).update(
        status=Status.RUNNING, started_at=timezone.now(), processed=0
    )
    if not claimed:
        return
    rebuild = ProjectionRebuild.objects.get(pk=rebuild_id)
    try:
        spec = projections.get(rebuild.projection)
        store = spec.store(rebuild.tenant_id)
        total = store.estimated_count()
        ProjectionRebuild.objects.filter(pk=rebuild_id).update(total=total)
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
            ProjectionRebuild.objects.filter(pk=rebuild_id).update(processed=processed, total=max(total, processed))
            if n < batch_size:
                break
        ProjectionRebuild.objects.filter(pk=rebuild_id).update(
            status=Status.COMPLETED, finished_at=timezone.now(), total=processed
        )
    except Exception as exc:
        logging.getLogger(__name__).exception("projection rebuild %s failed", rebuild_id)
        ProjectionRebuild.objects.filter(pk=rebuild_id).update(
            status=Status.FAILED, finished_at=timezone.now(), error=str(exc).splitlines()[0][:500]
        )


def projections_catch_up_all() -> int:
    """Periodic: run every control-plane projection until its feed is drained."""
    from django.db import connection

    from events import projections

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
