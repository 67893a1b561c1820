"""The `tenant.move` saga: its steps, their compensations, and the purge job that follows.

    begin → prepare_target → bulk_copy → freeze_and_switch (catch-up → freeze → delta → verify → switch)

- prepare_target: a pool with room whose kept ids do not collide (else a new pool), or a new schema,
  or a new dedicated database; the chosen name is recorded on the TenantMove *before* any DDL, so a
  retry after a crash finishes that one instead of making another. Compensation: drop it (or purge
  the tenant's rows from the pool).
- bulk_copy: start tracking the tenant's changes in the source (tracking.py), then COPY every table
  from one snapshot of the source while the tenant serves (copy.py).
- freeze_and_switch, one step so that the freeze lasts only as long as its work:
  - catch-up, still serving: copy the rows changed during the bulk copy, verify the whole copy
    (row counts, per-table checksums of both copies);
  - freeze: active → moving under the exclusive write fence (fence.py); reads go on, writes get 409;
  - delta: with the source frozen, copy only the rows changed after the catch-up; verify: row
    counts, the checksums carried forward by those rows, the target's hash chain; a mismatch is
    permanent: compensate;
  - switch: one transaction under the fence: placement and isolation changed, status active, every
    process told to clear its host cache, the purge job scheduled after the grace period (which
    removes the source's change tracking before deleting anything).
  Compensation: moving → active on the source, which nothing has touched. It is the last step, so
  nothing after the switch can compensate a switched tenant back.

The TenantMove row carries what the screens show (phase, rows copied, freeze time, checksums).

Why one module: each step's action and its compensation must undo exactly what the other did, on
the same placement and server recorded on the TenantMove, and the steps, compensations and purge
share the same small helpers (the move's row, its phase, dropping a placement, removing the
tracking); kept side by side, that pairing can be checked at a glance.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from jobs.registry import JobContext, JobHandler, register
from jobs.services import job_create
from sagas.models import Saga
from sagas.registry import PermanentStepError, SagaDefinition, StepContext, StepDefinition, saga_register
from tenants import placements, servers
from tenants.crypto import decrypt_json
from tenants.databases import unregister_alias
from tenants.lifecycle import tenant_event
from tenants.migration_state import placement_state_refresh
from tenants.models import Placement, Tenant, TenantMove
from tenants.moves import copy, tracking
from tenants.moves.fence import fence_exclusive, hosts_changed
from tenants.provisioning.steps import _POOL_LOCK_KEY, _open_pool, dedicated_fields
from tenants.validation import schema_name_for_slug

logger = logging.getLogger(__name__)
SAGA_TYPE = "tenant.move"
PURGE_KIND = "tenants.move_purge"


def _move(ctx: StepContext) -> TenantMove:
    return TenantMove.objects.select_related("tenant", "source_placement", "target_placement").get(
        pk=ctx.input["move_id"]
    )


def _phase(move: TenantMove, phase: str, **fields: Any) -> None:
    TenantMove.objects.filter(pk=move.pk).update(phase=phase, updated_at=timezone.now(), **fields)


def begin(ctx: StepContext) -> None:
    move = _move(ctx)
    if move.source_placement_id is None:
        raise PermanentStepError("The tenant's source placement no longer exists.")
    _phase(move, "starting")


def begin_compensate(ctx: StepContext) -> None:
    """Last to run when a move is undone: record why, the tenant serving from its source."""
    saga = Saga.objects.filter(pk=ctx.saga_id).first()
    reason = (saga.error.splitlines()[0] if saga and saga.error else "The move was cancelled.")[:2000]
    untrack(_move(ctx))
    TenantMove.objects.filter(pk=ctx.input["move_id"], state=TenantMove.State.RUNNING).update(
        state=TenantMove.State.COMPENSATED, phase="rolled back", error=reason, updated_at=timezone.now()
    )


# --- prepare_target -------------------------------------------------------------------------


def _target_server(move: TenantMove) -> Any:
    """The server the move's target goes to: the one asked for (checked again: it may have started
    draining since), else the least full active server taking the level."""
    try:
        asked = servers.server_get(move.server) if move.server else None
        return servers.server_choose(isolation=move.target_isolation, server=asked)
    except (servers.NoServerRoom, servers.InvalidInput) as exc:
        raise PermanentStepError(str(exc)) from None


def _free_schema_name(slug: str, at: Any) -> str:
    base = schema_name_for_slug(slug)
    for n in range(1, 100):
        name = base if n == 1 else f"{base[:58]}_{n}"
        if not Placement.objects.filter(schema_name=name).exclude(kind=Placement.Kind.DATABASE).exists():
            if not placements.schema_exists(name, at=at):
                return name
    raise PermanentStepError(f"No free schema name is left for {slug}.")


def _free_database(slug: str, at: Any) -> tuple[str, str]:
    base_db, base_alias = placements.dedicated_database_name(slug), "tdb_" + slug.replace("-", "_")
    for n in range(1, 100):
        db_name = base_db if n == 1 else f"{base_db[:58]}_{n}"
        alias = base_alias if n == 1 else f"{base_alias[:55]}_{n}"
        if (
            not Placement.objects.filter(database_alias=alias).exists()
            and not Placement.objects.filter(kind=Placement.Kind.DATABASE, db_name=db_name).exists()
            and not placements.database_exists(db_name, at=at)
        ):
            return db_name, alias
    raise PermanentStepError(f"No free database name is left for {slug}.")


def _choose_pool(move: TenantMove) -> Placement:
    """A pool with room, other than the source, where none of the tenant's kept ids is taken; its id
    sequences first jump past the source's, so its tenants draw none of them meanwhile."""
    tenant_id = move.tenant_id
    src = copy.connect(move.source_placement, tenant_id)
    try:
        with transaction.atomic():
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_POOL_LOCK_KEY])  # one pool opener at a time
            candidates = servers.pools_with_room().exclude(pk=move.source_placement_id or 0)
            if move.server:  # a server was asked for: only its pools
                candidates = candidates.filter(server=servers.server_get(move.server))
            for pool in candidates.order_by("id"):
                if pool.tenants.count() >= pool.capacity:
                    continue
                tgt = copy.connect(pool, tenant_id)
                try:
                    copy.advance_sequences(src, tgt, headroom=copy.headroom())
                finally:
                    tgt.close()
                if copy.key_collisions(pool, tenant_id, src) == 0:
                    return pool
            pool = _open_pool(_target_server(move))
        tgt = copy.connect(pool, tenant_id)
        try:
            copy.advance_sequences(src, tgt, headroom=copy.headroom())
        finally:
            tgt.close()
        if copy.key_collisions(pool, tenant_id, src):  # a schema left over under the new pool's name
            raise PermanentStepError(f"The new pool {pool.schema_name} already holds rows with this tenant's ids.")
        return pool
    finally:
        src.close()


def prepare_target(ctx: StepContext) -> None:
    move = _move(ctx)
    tenant = move.tenant
    _phase(move, "creating the target placement")
    level = move.target_isolation
    if level == Tenant.Isolation.SHARED:
        if move.target_placement_id is None:
            pool = _choose_pool(move)
            TenantMove.objects.filter(pk=move.pk).update(target_placement=pool, target_label=str(pool))
        return
    # The server is recorded with the name before any DDL, so a retry (or the compensation) finds both.
    server = servers.server_get(move.server) if move.server else _target_server(move)
    at = servers.server_target(server)
    if not move.server:
        TenantMove.objects.filter(pk=move.pk).update(server=server.name)
    if level == Tenant.Isolation.SCHEMA:
        name = move.target_label or _free_schema_name(tenant.slug, at)
        TenantMove.objects.filter(pk=move.pk).update(target_label=name)  # recorded before any DDL
        placement, _ = Placement.objects.get_or_create(
            database_alias=servers.server_alias(server), schema_name=name,
            defaults={"kind": Placement.Kind.SCHEMA, "capacity": 1, **servers.location_fields(server)},
        )  # fmt: skip
        if not placements.schema_exists(name, at=at):
            placements.clone_template_schema(name, at=at)
        placement_state_refresh(placement)
    else:
        if move.target_label:
            db_name, alias = move.target_label.split("|")
        else:
            db_name, alias = _free_database(tenant.slug, at)
            TenantMove.objects.filter(pk=move.pk).update(target_label=f"{db_name}|{alias}")
        placement, _ = Placement.objects.get_or_create(
            database_alias=alias, schema_name="public", defaults=dedicated_fields(server, db_name)
        )
        placements.create_dedicated_database(db_name, credentials=decrypt_json(placement.credentials_encrypted), at=at)
        placement_state_refresh(placement)
    TenantMove.objects.filter(pk=move.pk).update(target_placement=placement)


def drop_placement(placement: Placement | None, tenant_id: Any) -> None:
    """Remove the tenant's copy in `placement`: its rows from a pool, the whole schema or database
    otherwise (only when no tenant points at it). Safe to repeat and on partial state."""
    if placement is None:
        return
    at = servers.placement_target(placement)
    if placement.kind == Placement.Kind.POOL:
        if placements.schema_exists(placement.schema_name, at=at):
            copy.purge_rows(placement, tenant_id)
        return
    if placement.tenants.exists():
        return  # someone lives there (never ours to drop)
    if placement.kind == Placement.Kind.SCHEMA:
        placements.drop_schema(placement.schema_name, at=at)
    else:
        unregister_alias(placement.database_alias)
        placements.drop_database(placement.db_name, at=at)
        placements.drop_dedicated_roles(placement.db_name, at=at)
    placement.delete()


def prepare_target_compensate(ctx: StepContext) -> None:
    move = _move(ctx)
    placement = move.target_placement
    at = servers.server_target(servers.server_get(move.server)) if move.server else None
    if placement is None and move.target_label and move.target_isolation == Tenant.Isolation.SCHEMA:
        if placements.schema_exists(move.target_label, at=at):  # DDL ran, the row was not yet recorded
            placements.drop_schema(move.target_label, at=at)
    if placement is None and move.target_label and move.target_isolation == Tenant.Isolation.DEDICATED:
        db_name = move.target_label.split("|")[0]
        placements.drop_database(db_name, at=at)
        placements.drop_dedicated_roles(db_name, at=at)
    if placement is not None and move.tenant.placement_id == placement.pk:
        return  # switched: never drop what the tenant now lives in
    drop_placement(placement, move.tenant_id)


# --- copying ------------------------------------------------------------------------------------


def bulk_copy(ctx: StepContext) -> dict[str, Any]:
    move = _move(ctx)
    if move.target_placement is None:
        raise RuntimeError("The target placement is not recorded yet.")
    src = copy.connect(move.source_placement, move.tenant_id)
    tgt = copy.connect(move.target_placement, move.tenant_id)
    try:
        # Before the copy's snapshot: from now on every change of the tenant's rows in the source is
        # recorded, so the frozen step reads only those (tracking.py).
        _phase(move, "tracking changes in the source")
        tracking.install(src, move_id=move.pk, tenant_id=move.tenant_id, tables=copy.tenant_tables())
        total = sum(copy.count_rows(src, t, move.tenant_id) for t in copy.tenant_tables())
        present = sum(copy.count_rows(tgt, t, move.tenant_id) for t in copy.tenant_tables())
        src.rollback()
        tgt.rollback()
        _phase(move, "copying rows", rows_total=total, rows_copied=present)

        def progress(table: str, inserted: int) -> None:
            TenantMove.objects.filter(pk=move.pk).update(rows_copied=F("rows_copied") + inserted)

        fresh = move.target_placement.kind != Placement.Kind.POOL  # made for this move, serving nobody
        copied = copy.bulk_copy(src, tgt, move.tenant_id, progress, fresh=fresh)
        # The chain of what was copied is checked now, while the tenant serves; the frozen step
        # checks only the events the delta adds after this one.
        _phase(move, "verifying the copied event chain")
        checked_to = copy.last_event_id(tgt, move.tenant_id)
        breaks = copy.chain_breaks(tgt, move.tenant_id)
    finally:
        src.close()
        tgt.close()
    if breaks:
        raise PermanentStepError(f"Verification failed: {breaks} copied events break the hash chain in the target.")
    return {"bulk_rows": sum(copied.values()), "chain_checked_to": checked_to}


def _freeze(move: TenantMove) -> None:
    """active → moving under the exclusive write fence: writes in flight finish first, later ones see
    `moving` (409). Idempotent: a retry finds the tenant already frozen."""
    with transaction.atomic():
        fence_exclusive(move.tenant_id)
        updated = Tenant.objects.filter(
            pk=move.tenant_id, status=Tenant.Status.ACTIVE, placement_id=move.source_placement_id or 0
        ).update(status=Tenant.Status.MOVING, status_changed_at=timezone.now())
        if not updated:
            tenant = Tenant.objects.get(pk=move.tenant_id)
            if tenant.status != Tenant.Status.MOVING or tenant.placement_id != move.source_placement_id:
                raise PermanentStepError(
                    f"{tenant.slug} is {tenant.get_status_display().lower()}, so it cannot be frozen."
                )
        else:
            tenant_event(move.tenant_id, "TenantMoveFrozen", status=Tenant.Status.MOVING, move_id=str(move.pk))
            TenantMove.objects.filter(pk=move.pk).update(freeze_started_at=timezone.now(), phase="frozen")
        hosts_changed()


def _verify(report: dict[str, Any], breaks: int) -> None:
    for name, v in report.items():
        if v["rows"] != v["target_rows"]:
            raise PermanentStepError(
                f"Verification failed: {name} has {v['rows']} rows in the source and {v['target_rows']} in the target."
            )
        if v["checksum"] != v["target_checksum"]:
            raise PermanentStepError(f"Verification failed: the checksums of {name} differ.")
    if breaks:
        raise PermanentStepError(f"Verification failed: {breaks} events break the hash chain in the target.")


def untrack(move: TenantMove) -> None:
    """Remove the move's change tracking from its source (on compensation, before a purge: a purge's
    deletes must not be recorded). Safe to repeat; nothing to do without a source."""
    if move.source_placement is None:
        return
    if move.source_placement.kind != Placement.Kind.DATABASE and not placements.schema_exists(
        move.source_placement.schema_name
    ):
        return
    conn = copy.connect(move.source_placement, move.tenant_id)
    try:
        tracking.uninstall(conn, move_id=move.pk, tables=copy.tenant_tables())
    finally:
        conn.close()


def _switch(move: TenantMove, target: Placement) -> None:
    now = timezone.now()
    with transaction.atomic():
        fence_exclusive(move.tenant_id)
        tenant = Tenant.objects.select_for_update().get(pk=move.tenant_id)
        if tenant.status != Tenant.Status.MOVING or tenant.placement_id != move.source_placement_id:
            raise PermanentStepError(f"{tenant.slug} is no longer frozen on its source placement.")
        Tenant.objects.filter(pk=tenant.pk).update(
            placement=target, isolation=move.target_isolation, status=Tenant.Status.ACTIVE, status_changed_at=now
        )
        purge_after = now + timedelta(seconds=settings.TENANCY_MOVE_PURGE_GRACE_SECONDS)
        started = TenantMove.objects.values_list("freeze_started_at", flat=True).get(pk=move.pk)
        freeze_ms = int((now - started).total_seconds() * 1000) if started else None
        tenant_event(
            tenant.pk, "TenantMoved", status=Tenant.Status.ACTIVE, isolation=move.target_isolation,
            placement_kind=target.kind, schema=target.schema_name, database=target.db_name or None,
            move_id=str(move.pk), freeze_ms=freeze_ms,
        )  # fmt: skip
        TenantMove.objects.filter(pk=move.pk).update(
            state=TenantMove.State.SWITCHED, phase="switched; source kept until the purge",
            switched_at=now, purge_after=purge_after, updated_at=now,
        )  # fmt: skip
        job_create(
            kind=PURGE_KIND, payload={"move_id": str(move.pk)}, group=("tenant_move", move.pk), run_after=purge_after
        )
        hosts_changed()


def freeze_and_switch(ctx: StepContext) -> dict[str, Any]:
    """Catch up, then the frozen part, one step so the freeze lasts only as long as the work.

    - catch-up (the tenant still serving): in a snapshot S of the source, copy the rows changed since
      the bulk copy began, then verify the whole copy: row counts and checksums of every table;
    - freeze → copy the rows changed after S (only those: change tracking) → verify: full row counts,
      checksums carried forward from S by the changed rows (copy.final_delta), the target's hash chain
      over the events added since the bulk copy's check → switch.

    Every part is idempotent; an attempt whose worker died after the switch committed finds it done,
    and a retry after the freeze catches up while frozen (then the frozen delta is empty)."""
    move = _move(ctx)
    target = move.target_placement
    if target is None:
        raise RuntimeError("The target placement is not recorded.")
    tenant = Tenant.objects.get(pk=move.tenant_id)
    if tenant.placement_id == target.pk:
        return {"switched": True}  # done by an attempt whose worker died before recording it
    # Every connection is opened before the freeze: connecting is not frozen time.
    before = copy.connect(move.source_placement, move.tenant_id)
    src = copy.connect(move.source_placement, move.tenant_id)
    tgt = copy.connect(target, move.tenant_id)
    try:
        _phase(move, "copying the changes made during the copy, verifying")
        snap, caught_up, base = copy.catch_up(before, tgt, move_id=move.pk, tenant_id=move.tenant_id)
        breaks = copy.chain_breaks(tgt, move.tenant_id, after_event_id=int(ctx.value("chain_checked_to", 0)))
        if breaks:
            raise copy.MoveError(f"Verification failed: {breaks} events break the hash chain in the target.")
        checked_to = copy.last_event_id(tgt, move.tenant_id)
        TenantMove.objects.filter(pk=move.pk).update(rows_copied=F("rows_copied") + caught_up)
        _freeze(move)
        _phase(move, "frozen: copying the last changes")
        copy.advance_sequences(src, tgt, headroom=copy.headroom() if target.kind == Placement.Kind.POOL else 0)
        changed, report = copy.final_delta(
            before, src, tgt, move_id=move.pk, tenant_id=move.tenant_id, snap=snap, base=base
        )
        _phase(move, "frozen: verifying")
        breaks = copy.chain_breaks(tgt, move.tenant_id, after_event_id=checked_to)
    except copy.MoveError as exc:
        raise PermanentStepError(str(exc)) from exc
    finally:
        before.close()
        src.close()
        tgt.close()
    TenantMove.objects.filter(pk=move.pk).update(
        tables=report, delta_rows=changed + caught_up, rows_copied=F("rows_copied") + changed
    )
    _verify(report, breaks)
    _switch(move, target)
    # The source's change tracking stays until the purge removes it first: nothing writes the tenant's
    # rows there any more, and a pool's other tenants pay one comparison per row written meanwhile.
    return {"delta_rows": changed, "caught_up_rows": caught_up}


def freeze_and_switch_compensate(ctx: StepContext) -> None:
    """Unfreeze on the source (never after the switch: then the tenant lives in the target)."""
    move = _move(ctx)
    with transaction.atomic():
        fence_exclusive(move.tenant_id)
        updated = Tenant.objects.filter(
            pk=move.tenant_id, status=Tenant.Status.MOVING, placement_id=move.source_placement_id or 0
        ).update(status=Tenant.Status.ACTIVE, status_changed_at=timezone.now())
        if updated:
            tenant_event(move.tenant_id, "TenantMoveUnfrozen", status=Tenant.Status.ACTIVE, move_id=str(move.pk))
        hosts_changed()
    untrack(move)


saga_register(
    SagaDefinition(
        SAGA_TYPE,
        "Move a tenant to another placement",
        (
            StepDefinition("begin", begin, begin_compensate, description="Check the move"),
            StepDefinition(
                "prepare_target", prepare_target, prepare_target_compensate, description="Create the target placement"
            ),  # fmt: skip
            StepDefinition("bulk_copy", bulk_copy, None, description="Copy every row while the tenant serves"),
            StepDefinition(
                "freeze_and_switch",
                freeze_and_switch,
                freeze_and_switch_compensate,
                description="Freeze writes, copy the delta, verify, switch the placement",
            ),  # fmt: skip
        ),
    )
)


@register
class MovePurge(JobHandler):
    """After the grace period: remove the source copy of a switched move (rows, schema or database)."""

    kind = PURGE_KIND
    title = "Purge a moved tenant's source copy"
    max_attempts = 10

    def run(self, ctx: JobContext) -> dict:
        move = TenantMove.objects.select_related("source_placement", "tenant").get(pk=ctx.job.payload["move_id"])
        if move.state == TenantMove.State.PURGED:
            return {"purged": False}
        if move.state != TenantMove.State.SWITCHED:
            raise RuntimeError("Only a switched move's source is purged.")
        source = move.source_placement
        if source is not None and move.tenant.placement_id == source.pk:
            raise RuntimeError("The tenant still lives in the source placement.")
        untrack(move)  # before the purge's deletes, which it would record
        drop_placement(source, move.tenant_id)
        TenantMove.objects.filter(pk=move.pk).update(
            state=TenantMove.State.PURGED, phase="done", purged_at=timezone.now(), updated_at=timezone.now()
        )
        return {"purged": True, "source": move.source_label}
