"""The `tenant.delete` saga, started by the `tenants.delete_start` job when the grace period ends.

    begin → destroy_keys → purge_exports → purge_moves → drop_data → release_domains → finish

Forward only: after the grace period nothing is restored, so the steps have no compensations; a
step that keeps failing leaves the saga for an operator (Retry on the saga monitor).

- destroy_keys: every subject key of the tenant is erased first (crypto-shredding): whatever
  was encrypted for it — in backups, in an export, in a move's source awaiting its purge — is
  unreadable from then on, even before the rows themselves are gone.
- purge_exports: the tenant's export files (the final one included: its owner could download it
  during the grace period) are removed; their rows stay, marked purged.
- purge_moves: sources of earlier moves still in their grace period go now.
- drop_data: a pool's rows are deleted; a schema's tables are dropped in batches of
  `TENANCY_DELETE_TABLES_PER_TRANSACTION`, each batch its own transaction, then the schema — one
  `DROP SCHEMA … CASCADE` over thousands of tables takes a lock per table in one transaction and runs
  out of the shared lock table ("out of shared memory", as django-tenants users meet it); a database
  is dropped with its roles.
- release_domains / finish: the host names are free again; the tenant is `deleted`, the deletion
  records what went.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from psycopg import sql

from jobs.registry import JobContext, JobHandler, register
from sagas.registry import PermanentStepError, SagaDefinition, StepContext, StepDefinition, saga_register
from sagas.services import saga_start
from tenants import placements, servers
from tenants.databases import unregister_alias
from tenants.exports.services import tenant_exports_purge
from tenants.lifecycle import tenant_event
from tenants.models import Domain, Placement, Tenant, TenantDeletion, TenantMove
from tenants.moves import copy
from tenants.moves.fence import hosts_changed
from tenants.moves.sagas import drop_placement, untrack
from tenants.validation import validate_schema_name

SAGA_TYPE = "tenant.delete"
START_KIND = "tenants.delete_start"


def _deletion(ctx: StepContext) -> TenantDeletion:
    return TenantDeletion.objects.select_related("tenant", "tenant__placement").get(pk=ctx.input["deletion_id"])


def _record(deletion: TenantDeletion, **values: Any) -> None:
    """Merge into the record of what was destroyed (re-read: an earlier attempt may have written)."""
    with transaction.atomic():
        row = TenantDeletion.objects.select_for_update().get(pk=deletion.pk)
        row.destroyed = {**row.destroyed, **values}
        row.save(update_fields=["destroyed"])


def begin(ctx: StepContext) -> None:
    deletion = _deletion(ctx)
    if deletion.tenant.status not in (Tenant.Status.DELETING, Tenant.Status.DELETED):
        raise PermanentStepError(f"{deletion.tenant.slug} is no longer scheduled for deletion.")
    TenantDeletion.objects.filter(pk=deletion.pk, state=TenantDeletion.State.SCHEDULED).update(
        state=TenantDeletion.State.RUNNING
    )


def destroy_keys(ctx: StepContext) -> None:
    deletion = _deletion(ctx)
    placement = deletion.tenant.placement
    if placement is None:
        return
    conn = copy.connect(placement, deletion.tenant_id)
    try:
        cur = conn.execute(
            "UPDATE tenantlog_subjectkey SET key = NULL, erased_at = coalesce(erased_at, now()), "
            "erasure_reason = 'tenant deleted' WHERE tenant_id = %s AND key IS NOT NULL",
            [str(deletion.tenant_id)],
        )
        erased = cur.rowcount
        total = conn.execute(
            "SELECT count(*) FROM tenantlog_subjectkey WHERE tenant_id = %s", [str(deletion.tenant_id)]
        ).fetchone()
        conn.commit()
    finally:
        conn.close()
    if erased or "subject_keys" not in deletion.destroyed:
        _record(deletion, subject_keys=int(total[0]) if total else erased)


def purge_exports(ctx: StepContext) -> None:
    """The tenant's export files go with its data (the owner had the grace period to download the final one)."""
    deletion = _deletion(ctx)
    removed = tenant_exports_purge(tenant_id=deletion.tenant_id)
    if removed or "exports_removed" not in deletion.destroyed:
        _record(deletion, exports_removed=removed + int(deletion.destroyed.get("exports_removed", 0)))


def purge_moves(ctx: StepContext) -> None:
    deletion = _deletion(ctx)
    for move in TenantMove.objects.filter(tenant_id=deletion.tenant_id, state=TenantMove.State.SWITCHED).select_related(
        "source_placement"
    ):
        untrack(move)  # before the deletes, which the move's change tracking would record
        drop_placement(move.source_placement, deletion.tenant_id)
        TenantMove.objects.filter(pk=move.pk).update(
            state=TenantMove.State.PURGED, phase="purged by the tenant's deletion", purged_at=timezone.now()
        )


def _rows(placement: Placement, tenant_id: Any) -> dict[str, int]:
    conn = copy.connect(placement, tenant_id)
    try:
        return {t.name: copy.count_rows(conn, t, tenant_id) for t in copy.tenant_tables()}
    finally:
        conn.close()


def _drop_schema_in_batches(schema: str, at: Any = None) -> int:
    """Drop every table of `schema` a batch per transaction, then the schema; returns tables dropped."""
    schema = validate_schema_name(schema)
    batch = settings.TENANCY_DELETE_TABLES_PER_TRANSACTION
    dropped = 0
    with placements.owner_connect(autocommit=True, at=at) as conn:
        conn.execute("SET lock_timeout = '10s'")
        while True:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname LIMIT %s",
                    [schema, batch],
                ).fetchall()
            ]
            if not tables:
                break
            with conn.transaction():
                names = sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables)
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(names))
            dropped += len(tables)
    placements.drop_schema(schema, at=at)
    return dropped


def drop_data(ctx: StepContext) -> None:
    deletion = _deletion(ctx)
    tenant = deletion.tenant
    placement = tenant.placement
    if placement is None:
        return  # an earlier attempt finished
    at = servers.placement_target(placement)
    if "rows" not in deletion.destroyed and (
        placement.kind != Placement.Kind.SCHEMA or placements.schema_exists(placement.schema_name, at=at)
    ):
        _record(deletion, rows=_rows(placement, tenant.pk), placement=str(placement), placement_kind=placement.kind)
    if placement.kind == Placement.Kind.POOL:
        copy.purge_rows(placement, tenant.pk)
        Tenant.objects.filter(pk=tenant.pk).update(placement=None)
        return
    if placement.kind == Placement.Kind.SCHEMA:
        tables = _drop_schema_in_batches(placement.schema_name, at)
        if tables:
            _record(deletion, tables_dropped=tables)
    else:
        unregister_alias(placement.database_alias)
        placements.drop_database(placement.db_name, at=at)
        placements.drop_dedicated_roles(placement.db_name, at=at)
        _record(deletion, database_dropped=placement.db_name, credentials="destroyed with the placement row")
    with transaction.atomic():
        Tenant.objects.filter(pk=tenant.pk).update(placement=None)
        placement.delete()


def release_domains(ctx: StepContext) -> None:
    deletion = _deletion(ctx)
    with transaction.atomic():
        names = list(Domain.objects.filter(tenant_id=deletion.tenant_id).values_list("domain", flat=True))
        if names:
            _record(deletion, domains=sorted(names))
        Domain.objects.filter(tenant_id=deletion.tenant_id).delete()
        hosts_changed()


def finish(ctx: StepContext) -> None:
    deletion = _deletion(ctx)
    now = timezone.now()
    with transaction.atomic():
        updated = Tenant.objects.filter(pk=deletion.tenant_id, status=Tenant.Status.DELETING).update(
            status=Tenant.Status.DELETED, status_changed_at=now, owner_email=""
        )
        if updated:
            record = TenantDeletion.objects.get(pk=deletion.pk).destroyed
            tenant_event(deletion.tenant_id, "TenantDeleted", status=Tenant.Status.DELETED, destroyed=record)
        TenantDeletion.objects.filter(pk=deletion.pk).update(state=TenantDeletion.State.DONE, finished_at=now)
        hosts_changed()


saga_register(
    SagaDefinition(
        SAGA_TYPE,
        "Delete a tenant",
        (
            StepDefinition("begin", begin, None, description="Check the deletion is still wanted"),
            StepDefinition("destroy_keys", destroy_keys, None, description="Erase the tenant's keys (crypto-shred)"),
            StepDefinition("purge_exports", purge_exports, None, description="Remove the tenant's export files"),
            StepDefinition("purge_moves", purge_moves, None, description="Purge sources of earlier moves"),
            StepDefinition(
                "drop_data", drop_data, None, description="Drop the schema or database, or purge the pool rows"
            ),
            StepDefinition("release_domains", release_domains, None, description="Release the tenant's domains"),
            StepDefinition("finish", finish, None, description="Mark the tenant deleted"),
        ),
    )
)


@register
class DeleteStart(JobHandler):
    """When a deletion's grace period ends: start its saga (unless it was cancelled meanwhile)."""

    kind = START_KIND
    title = "Start a tenant's deletion after its grace period"

    def run(self, ctx: JobContext) -> dict:
        with transaction.atomic():
            deletion = TenantDeletion.objects.select_for_update().get(pk=ctx.job.payload["deletion_id"])
            if deletion.state != TenantDeletion.State.SCHEDULED or deletion.saga_id:
                return {"started": False, "state": deletion.state}
            saga = saga_start(
                saga_type=SAGA_TYPE, input={"deletion_id": str(deletion.pk), "tenant_id": str(deletion.tenant_id)},
                tenant_id=deletion.tenant_id, tenant_label=deletion.tenant.slug,
                idempotency_key=f"delete:{deletion.pk}",
            )  # fmt: skip
            TenantDeletion.objects.filter(pk=deletion.pk).update(saga_id=saga.pk)
        return {"started": True, "saga_id": str(saga.pk)}
