"""Exports and restores of one tenant: the entry points behind the tenant page, the API, the commands,
the schedule and offboarding.

    export = tenant_export(tenant=tenant, actor=request.user, request=request)          # on demand
    tenant_export_schedule()                                                             # beat, per plan
    tenant = tenant_restore_new(path="acme.zip", slug="acme-2", isolation="schema", actor=COMMAND)
    job = tenant_restore_in_place(tenant=tenant, export=export, confirm="acme", actor=request.user)

Every refusal is one sentence (core.errors) and creates nothing; a file that fails its manifest check
is refused before a tenant is provisioned for it.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Max
from django.http import HttpRequest
from django.utils import timezone
from psycopg import sql

from audit.actions import AuditAction
from audit.services import audit_record
from core import dbroles
from core.actors import Actor, SystemActor, actor_label
from core.errors import ApplicationError, Conflict, InvalidInput, NotFound
from jobs.models import Job
from jobs.services import job_create, jobs_work_inline
from tenants import servers
from tenants.exports import format
from tenants.exports.jobs import EXPORT_KIND, RESTORE_KIND, export_path, exports_dir
from tenants.lifecycle import tenant_event
from tenants.models import Placement, Tenant, TenantDeletion, TenantExport, TenantMove
from tenants.moves.fence import fence_exclusive, hosts_changed
from tenants.provisioning.services import tenant_provision_and_wait
from tenants.provisioning.steps import _POOL_LOCK_KEY, _open_pool

COMMAND = SystemActor("manage.py restore_tenant")
SCHEDULE = SystemActor("export schedule")
EXPORTABLE = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED, Tenant.Status.MOVING, Tenant.Status.DELETING)
OPEN = (TenantExport.State.PENDING, TenantExport.State.RUNNING)


class RestoreError(ApplicationError):
    """A restore job ended without restoring; one sentence."""


def tenant_export(
    *, tenant: Tenant, actor: Actor, reason: str = TenantExport.Reason.ON_DEMAND, request: HttpRequest | None = None,
    group: tuple[str, Any] | None = None, batch: int = 0,
) -> TenantExport:  # fmt: skip
    """Record an export of `tenant` and create its job (inside the caller's transaction, or one of its
    own). Conflict when the tenant has no data to export or an export of it is already open."""
    if reason not in TenantExport.Reason.values:
        raise InvalidInput("Unknown export reason.")
    if tenant.status not in EXPORTABLE or tenant.placement_id is None:
        raise Conflict(f"{tenant.name} is {tenant.get_status_display().lower()}, so it has no data to export.")
    if reason in (TenantExport.Reason.ON_DEMAND, TenantExport.Reason.SCHEDULED):
        if TenantExport.objects.filter(tenant=tenant, state__in=OPEN).exists():
            raise Conflict(f"An export of {tenant.name} is already running.")
    with transaction.atomic():
        export = TenantExport.objects.create(
            tenant=tenant, reason=reason, requested_by=actor_label(actor)[:150], source_isolation=tenant.isolation
        )
        job = job_create(
            kind=EXPORT_KIND, payload={"export_id": str(export.pk), "tenant_id": str(tenant.pk)},
            group=group or ("tenant_export", export.pk), batch=batch, actor=actor,
        )  # fmt: skip
        TenantExport.objects.filter(pk=export.pk).update(job=job)
        export.job = job
        audit_record(
            actor=actor, action=AuditAction.TENANT_EXPORT, target_type="tenant", target_id=tenant.pk,
            summary=f"Export of {tenant.slug} ({export.get_reason_display().lower()})", request=request,
            details={"export_id": str(export.pk), "reason": reason},
        )  # fmt: skip
    return export


def tenant_export_and_wait(
    *, tenant: Tenant, actor: Actor, out: Path | None = None, worker_grace_seconds: float = 10.0,
    progress: Callable[[str], Any] = lambda line: None,
) -> TenantExport:  # fmt: skip
    """What `manage.py export_tenant` does: export, follow the job (running it in this process when no
    worker claims it), optionally copy the file to `out`."""
    export = tenant_export(tenant=tenant, actor=actor)
    progress(f"export {export.pk} started (job {export.job_id})")
    group_wait(("tenant_export", export.pk), worker_grace_seconds)
    export.refresh_from_db()
    if export.state != TenantExport.State.DONE:
        raise RestoreError(f"The export failed: {export.error.splitlines()[0] if export.error else export.state}")
    if out is not None:
        shutil.copyfile(export_path(export), out)
    progress(f"{export.rows} rows, {export.size} bytes, sha256 {export.sha256}")
    return export


def group_wait(group: tuple[str, Any], worker_grace_seconds: float, timeout: float = 24 * 3600) -> None:
    """Follow a group's jobs to their end; run them here if no worker claimed one within the grace."""
    started = time.monotonic()
    rows = Job.objects.filter(group_type=group[0], group_id=str(group[1]))
    while rows.filter(state__in=Job.OPEN).exists():
        if time.monotonic() - started > worker_grace_seconds and not rows.filter(attempts__gt=0).exists():
            jobs_work_inline(group=group, timeout=timeout)
            continue
        time.sleep(0.2)


# --- the schedule (recovery point objective per plan) -------------------------------------------------


def rpo_hours(plan: str) -> int:
    return int(dict(settings.COMPLIANCE_RPO_HOURS).get(plan, 24))


def tenant_export_schedule(*, now: datetime | None = None) -> list[TenantExport]:
    """Beat: an export for every active tenant whose newest export (done or open) is older than half its
    plan's recovery point objective, so a new one finishes well within it. Safe to run twice."""
    now = now or timezone.now()
    newest = dict(
        TenantExport.objects.filter(state__in=[TenantExport.State.DONE, *OPEN])
        .values("tenant_id")
        .annotate(at=Max("created_at"))
        .values_list("tenant_id", "at")
    )
    started = []
    for tenant in Tenant.objects.filter(status=Tenant.Status.ACTIVE, placement__isnull=False).order_by("slug"):
        last = newest.get(tenant.pk)
        if last is not None and last > now - timedelta(hours=rpo_hours(tenant.plan)) / 2:
            continue
        try:
            started.append(tenant_export(tenant=tenant, actor=SCHEDULE, reason=TenantExport.Reason.SCHEDULED))
        except Conflict:
            continue  # an export of it started meanwhile
    return started


# --- downloads ----------------------------------------------------------------------------------------


def export_file(*, export: TenantExport, actor: Actor, request: HttpRequest | None = None) -> Path:
    """The export's file for an operator's download (audited), or Conflict while it is not ready."""
    path = export_path(export)
    if export.state != TenantExport.State.DONE or not path.exists():
        raise Conflict("This export has no file to download (it is not ready or was removed).")
    audit_record(
        actor=actor, action=AuditAction.TENANT_EXPORT_DOWNLOAD, target_type="tenant", target_id=export.tenant_id,
        summary=f"Export {export.pk} of {export.tenant.slug} downloaded", request=request,
        details={"export_id": str(export.pk)},
    )  # fmt: skip
    return path


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def owner_link_create(*, export: TenantExport) -> tuple[str, datetime]:
    """A link for the tenant's owner to the final export, valid until the deletion's grace period ends
    (in the caller's transaction); returns the URL (shown or sent once) and when it expires."""
    deletion = TenantDeletion.objects.filter(tenant_id=export.tenant_id).order_by("-created_at").first()
    expires = deletion.grace_until if deletion is not None else timezone.now() + timedelta(days=1)
    token = "exp_" + secrets.token_urlsafe(32)
    TenantExport.objects.filter(pk=export.pk).update(owner_token_hash=_token_hash(token), owner_link_expires_at=expires)
    scheme = settings.TENANCY_WORKSPACE_SCHEME
    port = settings.TENANCY_WORKSPACE_PORT
    host = settings.BASE_DOMAIN + (f":{port}" if port else "")
    return f"{scheme}://{host}/tenants/exports/owner/{token}/", expires


def owner_link_redeem(*, token: Any, request: HttpRequest | None = None) -> tuple[TenantExport, Path]:
    """The final export behind an owner's link, while the link is unexpired and the tenant is being
    deleted (restored tenants and finished deletions answer NotFound); audited."""
    if not isinstance(token, str) or not token.startswith("exp_") or len(token) > 100 or "\x00" in token:
        raise NotFound("This download link is not valid.")
    export = (
        TenantExport.objects.select_related("tenant")
        .filter(owner_token_hash=_token_hash(token), owner_link_expires_at__gt=timezone.now())
        .first()
    )
    if export is None or export.tenant.status != Tenant.Status.DELETING:
        raise NotFound("This download link is not valid or has expired.")
    path = export_path(export)
    if export.state != TenantExport.State.DONE or not path.exists():
        raise NotFound("This export is no longer available.")
    audit_record(
        actor=SystemActor(f"owner of {export.tenant.slug} (download link)"), action=AuditAction.TENANT_EXPORT_DOWNLOAD,
        target_type="tenant", target_id=export.tenant_id, summary=f"Final export of {export.tenant.slug} downloaded "
        "by its owner", request=request, details={"export_id": str(export.pk)},
    )  # fmt: skip
    return export, path


def tenant_exports_purge(*, tenant_id: Any) -> int:
    """Offboarding: remove every export file of the tenant (their rows stay, `purged`); returns files removed."""
    removed = 0
    for export in TenantExport.objects.filter(tenant_id=tenant_id).exclude(state=TenantExport.State.PURGED):
        path = export_path(export)
        for candidate in (path, path.with_name(path.name + ".part")):
            if candidate.exists():
                candidate.unlink()
                removed += candidate == path
        TenantExport.objects.filter(pk=export.pk).update(
            state=TenantExport.State.PURGED, owner_token_hash="", owner_link_expires_at=None
        )
    return removed


def tenant_exports_expire(*, before: datetime, held_tenants: set[str]) -> dict[str, int]:
    """Retention (privacy's `tenant_exports` category): remove the files of exports finished before
    `before`, except each tenant's newest finished export (its recovery point), offboarding's final
    exports (the deletion removes them) and those of tenants under a legal hold. Idempotent."""
    newest = set(
        TenantExport.objects.filter(state=TenantExport.State.DONE)
        .order_by("tenant_id", "-finished_at")
        .distinct("tenant_id")
        .values_list("pk", flat=True)
    )
    purged = held = 0
    old = TenantExport.objects.filter(state=TenantExport.State.DONE, finished_at__lt=before).exclude(
        reason=TenantExport.Reason.OFFBOARDING
    )
    for export in old.exclude(pk__in=newest):
        if str(export.tenant_id) in held_tenants:
            held += 1
            continue
        export_path(export).unlink(missing_ok=True)
        TenantExport.objects.filter(pk=export.pk).update(state=TenantExport.State.PURGED)
        purged += 1
    return {"purged": purged, "held": held}


# --- restores -----------------------------------------------------------------------------------------


def _stage(path: Path) -> str:
    """Copy a file given on the command line under TENANCY_EXPORTS_DIR, where every worker reads it."""
    target = exports_dir() / "restores" / f"{uuid.uuid4()}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return str(target.relative_to(exports_dir()))


def _fits(admin: Any, schema: str, found: dict[str, tuple[Any, list[str]]]) -> bool:
    """Move the pool's id sequences past the export's ids, then: is none of them taken in the pool?
    As the bootstrap superuser: FORCE'd RLS hides other tenants' rows from every other role."""
    for table, values in found.values():
        if not values:
            continue
        qualified = sql.Identifier(schema, table.name)
        if table.serial and not table.renumber:
            top = max(int(v) for v in values)
            row = admin.execute(
                "SELECT pg_get_serial_sequence(%s, %s)", [qualified.as_string(admin), table.pk]
            ).fetchone()
            if row and row[0]:
                last = admin.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(row[0]))).fetchone()
                if last is not None and (int(last[0]) if last[1] else 0) < top:
                    admin.execute("SELECT setval(%s::regclass, %s)", [row[0], top])
        taken = admin.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {} = ANY(%s::{}[])").format(
                qualified, sql.Identifier(table.key), sql.SQL(table.key_type)
            ),
            [values],
        ).fetchone()
        if taken and taken[0]:
            return False
    return True


def _pool_for(opened: format.Opened) -> int:
    """The pool a restore into the shared level uses: the first with room where none of the export's
    kept ids or event uuids is taken (a copy of the same tenant may live in one), else a new pool."""
    found = format.keys(opened)
    with transaction.atomic():
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_POOL_LOCK_KEY])  # one pool opener at a time
        pools = Placement.objects.filter(kind=Placement.Kind.POOL, tenant_count__lt=F("capacity")).order_by("id")
        for pool in [*pools, None]:
            pool = pool or _open_pool()
            at = servers.placement_target(pool)  # the pool's server: its tenant-data database, its admin
            dbname = at.data_database if at else connections.settings["owner"]["NAME"]
            with dbroles.admin_connect(dbname, server=at.admin_info() if at else None) as admin:
                if _fits(admin, pool.schema_name, found):
                    return pool.pk
        raise RestoreError("A new pool already holds rows with this export's ids.")


def tenant_restore_new(
    *, path: Path | str, actor: Actor = COMMAND, slug: str = "", isolation: str = "",
    worker_grace_seconds: float = 10.0, progress: Callable[[str], Any] = lambda line: None,
) -> Tenant:  # fmt: skip
    """Restore an export file into a new tenant: check the file (refused before anything exists), provision
    the tenant through the provisioning saga (slug and level default to the export's), then load the rows
    with a `tenants.restore` job. Raises ExportInvalid / InvalidInput / ProvisioningError / RestoreError."""
    opened = format.open_export(path)
    slug = (slug or opened.tenant["slug"]).strip()
    isolation = isolation or opened.manifest["source"]["isolation"]
    if "\x00" in slug or isolation not in Tenant.Isolation.values:
        raise InvalidInput(f"The isolation level must be one of {', '.join(Tenant.Isolation.values)}.")
    if Tenant.objects.filter(slug=slug).exists():
        raise InvalidInput(f"A tenant with the slug “{slug}” already exists; restore under another one with --as.")
    progress(f"export of {opened.tenant['slug']} checked: {opened.manifest['rows']} rows, format {format.VERSION}")
    pool_id = _pool_for(opened) if isolation == Tenant.Isolation.SHARED else None
    staged = _stage(Path(path))
    tenant_id = tenant_provision_and_wait(
        slug=slug, isolation=isolation, name=opened.tenant.get("name", "") or slug,
        plan=opened.tenant.get("plan", Tenant.Plan.FREE), actor=actor, progress=progress,
        worker_grace_seconds=worker_grace_seconds, pool_id=pool_id,
    )  # fmt: skip
    tenant = Tenant.objects.get(pk=tenant_id)
    group = ("tenant_restore", uuid.uuid4())
    with transaction.atomic():
        job_create(
            kind=RESTORE_KIND, payload={"tenant_id": tenant_id, "file_name": staged, "mode": "new"}, group=group,
            actor=actor,
        )  # fmt: skip
        audit_record(
            actor=actor, action=AuditAction.TENANT_RESTORE, target_type="tenant", target_id=tenant_id,
            summary=f"Restore of an export of {opened.tenant['slug']} into the new tenant {slug} ({isolation})",
            details={"source_tenant": opened.tenant["id"], "isolation": isolation},
        )  # fmt: skip
    group_wait(group, worker_grace_seconds)
    job = Job.objects.get(group_type=group[0], group_id=str(group[1]))
    (exports_dir() / staged).unlink(missing_ok=True)
    if job.state != Job.State.SUCCEEDED:
        raise RestoreError(
            f"{slug} was provisioned but its rows could not be loaded: {(job.error or job.state).splitlines()[0]}"
        )
    progress(f"restored {job.result.get('rows', 0)} rows into {slug}")
    return tenant


def tenant_restore_in_place(
    *, tenant: Tenant, confirm: Any, actor: Actor, export: TenantExport | None = None, path: Path | str | None = None,
    request: HttpRequest | None = None,
) -> Job:  # fmt: skip
    """Replace the tenant's rows with one of its exports (`export`, or a file at `path` made of this
    tenant). `confirm` must be the slug, typed. The tenant's writes freeze at once (`moving`: 409 with
    Retry-After); a restore point (an export) is taken first; then a `tenants.restore` job replaces the
    rows in one transaction and unfreezes it, as does its failure. Returns the restore job."""
    if not isinstance(confirm, str) or confirm.strip() != tenant.slug:
        raise InvalidInput(f"Type the tenant's slug ({tenant.slug}) to confirm replacing its data.")
    if export is not None:
        if export.tenant_id != tenant.pk:
            raise NotFound("No such export for this tenant.")
        if export.state != TenantExport.State.DONE:
            raise Conflict("Only a finished export can be restored.")
        source = export_path(export)
    elif path is not None:
        source = Path(path)
    else:
        raise InvalidInput("Name the export to restore.")
    opened = format.open_export(source)
    if opened.tenant["id"] != str(tenant.pk):
        raise InvalidInput(f"This export was made of {opened.tenant['slug']}, not of {tenant.slug}.")
    if TenantMove.objects.filter(tenant=tenant, state=TenantMove.State.RUNNING).exists():
        raise Conflict(f"{tenant.name} is being moved; restore it once the move has finished.")
    staged = str(source.relative_to(exports_dir())) if export is not None else _stage(source)
    group = ("tenant_restore", uuid.uuid4())
    with transaction.atomic():
        fence_exclusive(tenant.pk)  # no write in flight past this point; new ones get 409
        current = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if current.status != Tenant.Status.ACTIVE:
            raise Conflict(
                f"{current.name} is {current.get_status_display().lower()}; only an active tenant is restored in place."
            )
        Tenant.objects.filter(pk=tenant.pk).update(
            status=Tenant.Status.MOVING, status_changed_at=timezone.now(), status_reason="restoring"
        )
        tenant_event(tenant.pk, "TenantRestoreStarted", status=Tenant.Status.MOVING)
        current.status = Tenant.Status.MOVING
        point = tenant_export(tenant=current, actor=actor, reason=TenantExport.Reason.RESTORE_POINT, group=group)
        job = job_create(
            kind=RESTORE_KIND, group=group, batch=1, actor=actor,
            payload={"tenant_id": str(tenant.pk), "file_name": staged, "mode": "in_place",
                     "restore_point_id": str(point.pk)},
        )  # fmt: skip
        audit_record(
            actor=actor, action=AuditAction.TENANT_RESTORE, target_type="tenant", target_id=tenant.pk,
            summary=f"In-place restore of {tenant.slug} from the export of {opened.manifest['created_at'][:16]}",
            request=request, details={"export_id": str(export.pk) if export else None, "restore_point": str(point.pk)},
        )  # fmt: skip
        hosts_changed()
    return job
