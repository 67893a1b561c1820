"""The job kinds of exports and restores, on the job engine.

- `tenants.export` writes one TenantExport's file. Crash-safe: the file is written to `<name>.part`
  (opened with truncation, so a retry starts it afresh), synced, then renamed into place; the row is
  marked done, with size, SHA-256 and rows, in the engine's transaction that records the success.
- `tenants.restore` loads an export into a tenant in one transaction of its placement (format.load):
  a new tenant just provisioned for it, or in place after the restore point was taken (the job runs in
  the group's second batch, after the restore-point export). An in-place restore freezes the tenant's
  writes (`moving`) from the request on; success or failure unfreezes it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from jobs.models import Job
from jobs.registry import JobContext, JobHandler, PermanentError, register
from jobs.services import JobCancelled
from tenants.exports import format
from tenants.lifecycle import tenant_event
from tenants.models import MigrationState, Tenant, TenantExport
from tenants.moves import copy
from tenants.moves.fence import fence_exclusive, hosts_changed

EXPORT_KIND = "tenants.export"
RESTORE_KIND = "tenants.restore"


def exports_dir() -> Path:
    return Path(settings.TENANCY_EXPORTS_DIR)


def export_path(export: TenantExport) -> Path:
    return exports_dir() / str(export.tenant_id) / f"{export.pk}.zip"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def export_write(export: TenantExport, progress: Any, stop: Any = lambda: None) -> dict[str, Any]:
    """Write the export's file from the tenant's current placement; returns what the row records."""
    tenant = Tenant.objects.select_related("placement").get(pk=export.tenant_id)
    if tenant.placement is None:
        raise PermanentError(f"{tenant.slug} has no data to export (it has no placement any more).")
    state = MigrationState.objects.filter(placement=tenant.placement).values_list("applied", flat=True).first()
    path = export_path(export)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    conn = copy.connect(tenant.placement, tenant.pk)
    try:
        with part.open("wb") as out:  # truncated: a retry rewrites the file from its first byte
            manifest = format.write(
                conn=conn, tenant=tenant, out=out, migrations=format.tenant_app_migrations(state or []),
                progress=progress, stop=stop,
            )  # fmt: skip
            out.flush()
            os.fsync(out.fileno())
    finally:
        conn.close()
    os.replace(part, path)
    return {
        "file_name": str(path.relative_to(exports_dir())),
        "size": path.stat().st_size,
        "sha256": file_sha256(path),
        "rows": manifest["rows"],
        "tables": {t["name"]: t["rows"] for t in manifest["tables"]},
        "format_version": manifest["version"],
        "source_isolation": tenant.isolation,
    }


@register
class ExportJob(JobHandler):
    kind = EXPORT_KIND
    title = "Export a tenant"
    max_attempts = 3

    def on_started(self, job: Job, attempt: int) -> None:
        TenantExport.objects.filter(pk=job.payload["export_id"], state=TenantExport.State.PENDING).update(
            state=TenantExport.State.RUNNING
        )

    def run(self, ctx: JobContext) -> dict[str, Any]:
        export = TenantExport.objects.get(pk=ctx.payload["export_id"])

        def stop() -> None:
            if ctx.cancel_requested():
                raise JobCancelled("Cancelled by an operator before the export was complete.")

        return export_write(export, lambda done, total: ctx.progress(done, total), stop)

    def on_succeeded(self, job: Job, result: dict[str, Any]) -> None:
        now = timezone.now()
        TenantExport.objects.filter(pk=job.payload["export_id"]).update(
            state=TenantExport.State.DONE, finished_at=now, error="", **result
        )
        export = TenantExport.objects.select_related("tenant").get(pk=job.payload["export_id"])
        if export.reason == TenantExport.Reason.OFFBOARDING:
            owner_link_send(export)
        return None

    def on_failed(self, job: Job, error: str) -> None:
        TenantExport.objects.filter(pk=job.payload["export_id"]).exclude(state=TenantExport.State.DONE).update(
            state=TenantExport.State.FAILED, error=error[:2000], finished_at=timezone.now()
        )
        export = TenantExport.objects.filter(pk=job.payload["export_id"]).first()
        if export is not None and export.state == TenantExport.State.FAILED:
            path = export_path(export)
            path.with_name(path.name + ".part").unlink(missing_ok=True)  # what the last attempt left

    def on_cancelled(self, job: Job, reason: str) -> None:
        self.on_failed(job, reason or "Cancelled.")


def owner_link_send(export: TenantExport) -> None:
    """Offboarding: email the owner a link to the final export, valid until the grace period ends.
    Only the token's hash is stored; the link answers only while the tenant is being deleted."""
    # At call time: services imports this module (the job kinds), and the link lives with the services.
    from tenants.exports.services import owner_link_create

    tenant = export.tenant
    if not tenant.owner_email:
        return
    url, expires = owner_link_create(export=export)
    body = (
        f"{tenant.name} is being deleted. Until {expires:%Y-%m-%d %H:%M} UTC you can download a final export of "
        f"your workspace's data here:\n\n{url}\n\nAfter that date the export and your data are gone for good."
    )
    email = tenant.owner_email
    transaction.on_commit(
        lambda: send_mail(f"Final export of {tenant.name}", body, settings.DEFAULT_FROM_EMAIL, [email])
    )


def _unfreeze(tenant_id: Any, event_type: str, **data: Any) -> None:
    """In the engine's transaction: the restored (or untouched) tenant takes writes again."""
    fence_exclusive(tenant_id)
    updated = Tenant.objects.filter(pk=tenant_id, status=Tenant.Status.MOVING, status_reason="restoring").update(
        status=Tenant.Status.ACTIVE, status_changed_at=timezone.now(), status_reason=""
    )
    if updated:
        tenant_event(tenant_id, event_type, status=Tenant.Status.ACTIVE, **data)
        hosts_changed()


def source_erasures(source_tenant_id: str) -> set[str]:
    """The erasures a copy of `source_tenant_id` must replay: the keys erased in its placement now, or
    every key once it was deleted (its keys were destroyed) or is unknown here."""
    source = Tenant.objects.select_related("placement").filter(pk=source_tenant_id).first()
    if source is None or source.placement is None or source.status == Tenant.Status.DELETED:
        return {format.ALL_SUBJECTS}
    conn = copy.connect(source.placement, source.pk)
    try:
        return format.erased_subjects(conn, source.pk)
    finally:
        conn.close()


@register
class RestoreJob(JobHandler):
    kind = RESTORE_KIND
    title = "Restore a tenant from an export"
    max_attempts = 3

    def run(self, ctx: JobContext) -> dict[str, Any]:
        payload = ctx.payload
        path = (exports_dir() / payload["file_name"]).resolve()
        if exports_dir().resolve() not in path.parents:
            raise PermanentError("The export to restore must lie under TENANCY_EXPORTS_DIR.")
        in_place = payload["mode"] == "in_place"
        if in_place:
            point = TenantExport.objects.filter(pk=payload["restore_point_id"]).first()
            if point is None or point.state != TenantExport.State.DONE:
                raise PermanentError("The restore point could not be taken, so nothing was restored.")
        tenant = Tenant.objects.select_related("placement").get(pk=payload["tenant_id"])
        if tenant.placement is None:
            raise PermanentError(f"{tenant.slug} has no placement to restore into.")
        try:
            opened = format.open_export(path)
        except format.ExportInvalid as exc:
            raise PermanentError(str(exc)) from None
        erased = source_erasures(opened.tenant["id"]) if opened.tenant["id"] != str(tenant.pk) else set()
        conn = copy.connect(tenant.placement, tenant.pk)
        try:
            # Replace in both modes: a retry after a committed load finds the rows and reloads them whole.
            loaded = format.load(
                opened=opened, conn=conn, tenant_id=tenant.pk, replace=True, erased=erased,
                progress=lambda done, total: ctx.progress(done, total),
            )  # fmt: skip
        except format.RestoreFailed as exc:
            raise PermanentError(str(exc)) from None
        finally:
            conn.close()
        return {"rows": sum(loaded.values()), "tables": loaded, "source_tenant": opened.tenant["id"]}

    def on_succeeded(self, job: Job, result: dict[str, Any]) -> None:
        if job.payload["mode"] == "in_place":
            _unfreeze(job.payload["tenant_id"], "TenantRestored", rows=result.get("rows", 0))
        else:
            tenant_event(job.payload["tenant_id"], "TenantRestored", rows=result.get("rows", 0))
        return None

    def on_failed(self, job: Job, error: str) -> None:
        if job.payload["mode"] == "in_place":
            _unfreeze(job.payload["tenant_id"], "TenantRestoreFailed", error=error[:300])

    def on_cancelled(self, job: Job, reason: str) -> None:
        self.on_failed(job, reason or "Cancelled.")
