"""Deleting a tenant: the entry point behind the tenant page, the API and `manage.py delete_tenant`.

    deletion = tenant_delete(tenant=tenant, confirm="acme", actor=request.user, request=request)

The tenant goes `deleting` at once (its hosts answer 404, its data stays), a final export is made for
its owner (emailed a link valid during the grace period), and a job starts the deletion saga when `TENANCY_DELETE_GRACE_SECONDS` have passed; until then `tenant_delete_cancel`
restores it to the status it had.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, SystemActor, actor_label
from core.errors import ApplicationError, Conflict, InvalidInput
from jobs.services import job_create, jobs_work_inline
from sagas.models import TERMINAL_SAGA_STATES, Saga, SagaState
from sagas.services import saga_run_inline
from tenants.exports.services import tenant_export
from tenants.lifecycle import tenant_event
from tenants.models import Tenant, TenantDeletion, TenantExport, TenantMove
from tenants.moves.fence import fence_exclusive, hosts_changed
from tenants.offboarding.sagas import START_KIND

COMMAND = SystemActor("manage.py delete_tenant")


class DeletionFailed(ApplicationError):
    """The deletion saga did not finish; one sentence."""


def tenant_delete(
    *, tenant: Tenant, confirm: str, actor: Actor, reason: str = "", grace_seconds: int | None = None,
    request: HttpRequest | None = None,
) -> TenantDeletion:  # fmt: skip
    """Schedule the deletion of `tenant` (active or suspended) after the grace period. `confirm` must
    be the tenant's slug, typed by the operator. Raises InvalidInput / Conflict with one sentence."""
    if (confirm or "").strip() != tenant.slug:
        raise InvalidInput(f"Type the tenant's slug ({tenant.slug}) to confirm the deletion.")
    grace = settings.TENANCY_DELETE_GRACE_SECONDS if grace_seconds is None else grace_seconds
    if not 0 <= grace <= 365 * 24 * 3600:
        raise InvalidInput("The grace period must be between 0 seconds and a year.")
    if TenantMove.objects.filter(tenant=tenant, state=TenantMove.State.RUNNING).exists():
        raise Conflict(f"{tenant.name} is being moved; delete it once the move has finished.")
    now = timezone.now()
    try:
        with transaction.atomic():
            fence_exclusive(tenant.pk)  # no write of the tenant is in flight past this point
            current = Tenant.objects.select_for_update().get(pk=tenant.pk)
            if current.status not in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED):
                raise Conflict(f"{current.name} is {current.get_status_display().lower()}, so it cannot be deleted.")
            Tenant.objects.filter(pk=tenant.pk).update(
                status=Tenant.Status.DELETING, status_changed_at=now, status_reason=reason[:300]
            )
            deletion = TenantDeletion.objects.create(
                tenant=current, previous_status=current.status, reason=reason[:300],
                requested_by=actor_label(actor)[:150], grace_until=now + timedelta(seconds=grace),
            )  # fmt: skip
            # The final export for the owner, from the data as it stands now (no write is in flight and
            # the hosts answer 404 from here on): the group's first batch, so the start job (the second)
            # runs only once it has ended, and the saga's purge_exports finds its file.
            current.status = Tenant.Status.DELETING
            tenant_export(
                tenant=current, actor=actor, reason=TenantExport.Reason.OFFBOARDING, request=request,
                group=("tenant_deletion", deletion.pk), batch=0,
            )  # fmt: skip
            job_create(
                kind=START_KIND, payload={"deletion_id": str(deletion.pk)}, group=("tenant_deletion", deletion.pk),
                batch=1, run_after=deletion.grace_until, actor=actor,
            )  # fmt: skip
            tenant_event(tenant.pk, "TenantDeletionScheduled", status=Tenant.Status.DELETING,
                         grace_until=deletion.grace_until.isoformat())  # fmt: skip
            audit_record(
                actor=actor, action=AuditAction.TENANT_DELETE, target_type="tenant", target_id=tenant.pk,
                summary=f"Deletion of {tenant.slug} scheduled for {deletion.grace_until:%Y-%m-%d %H:%M} UTC",
                request=request, details={"deletion_id": str(deletion.pk), "grace_seconds": grace, "reason": reason[:300]},
            )  # fmt: skip
            hosts_changed()
    except IntegrityError:  # a concurrent request scheduled it first
        raise Conflict(f"{tenant.name} is already scheduled for deletion.") from None
    return deletion


def tenant_delete_cancel(*, tenant: Tenant, actor: Actor, request: HttpRequest | None = None) -> Tenant:
    """Within the grace period: restore the tenant to the status it had. Conflict once deletion began."""
    with transaction.atomic():
        deletion = (
            TenantDeletion.objects.select_for_update()
            .filter(tenant=tenant, state=TenantDeletion.State.SCHEDULED, saga_id__isnull=True)
            .first()
        )
        if deletion is None:
            raise Conflict(f"{tenant.name} has no deletion that can still be cancelled.")
        TenantDeletion.objects.filter(pk=deletion.pk).update(
            state=TenantDeletion.State.CANCELLED, finished_at=timezone.now()
        )
        Tenant.objects.filter(pk=tenant.pk, status=Tenant.Status.DELETING).update(
            status=deletion.previous_status, status_changed_at=timezone.now(), status_reason=""
        )
        # The start job stays: when it runs it finds the deletion cancelled and starts nothing.
        tenant_event(tenant.pk, "TenantDeletionCancelled", status=deletion.previous_status)
        audit_record(
            actor=actor, action=AuditAction.TENANT_DELETE_CANCEL, target_type="tenant", target_id=tenant.pk,
            summary=f"Deletion of {tenant.slug} cancelled; back to {deletion.previous_status}", request=request,
            details={"deletion_id": str(deletion.pk)},
        )  # fmt: skip
        hosts_changed()
    tenant.refresh_from_db()
    return tenant


def tenant_delete_and_wait(
    *, tenant: Tenant, grace_seconds: int | None = None, actor: Actor = COMMAND, wait: bool = True,
    progress: Callable[[str], Any] = lambda line: None,
) -> TenantDeletion:  # fmt: skip
    """What `manage.py delete_tenant` does: schedule, and with a grace period of 0 follow the saga to its
    end (running its jobs in this process, like the other commands, when no worker takes them)."""
    deletion = tenant_delete(tenant=tenant, confirm=tenant.slug, actor=actor, grace_seconds=grace_seconds)
    progress(f"deletion {deletion.pk} scheduled; the data goes after {deletion.grace_until:%Y-%m-%d %H:%M:%S} UTC")
    if not wait or deletion.grace_until > timezone.now():
        return deletion
    try:
        # The final export first; a worker may hold it (then this waits for the worker to finish it).
        jobs_work_inline(group=("tenant_deletion", deletion.pk), timeout=600)
    except TimeoutError:
        raise DeletionFailed(
            "The final export has not finished within 10 minutes (a worker holds it); the deletion goes on "
            "when it does — follow it on the tenant page."
        ) from None
    deletion.refresh_from_db()
    if deletion.saga_id is None:
        raise DeletionFailed("The deletion saga did not start.")
    saga = saga_run_inline(saga_id=deletion.saga_id, timeout=3600)
    while saga.state not in TERMINAL_SAGA_STATES:  # pragma: no cover - a worker holds a step
        time.sleep(0.5)
        saga = Saga.objects.get(pk=saga.pk)
    deletion.refresh_from_db()
    if saga.state != SagaState.COMPLETED:
        raise DeletionFailed(f"The deletion stopped: {saga.error.splitlines()[0] if saga.error else saga.state}")
    progress(f"deleted; destroyed: {deletion.destroyed}")
    return deletion
