"""Starting a move: the one entry point behind the tenant page, the API and `manage.py move_tenant`.

    move = tenant_move(tenant=tenant, to="dedicated", actor=request.user, request=request)

validates first (one sentence, nothing created), then records a TenantMove and starts the
`tenant.move` saga (sagas.py) in one transaction with the audit entry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, SystemActor, actor_label
from core.errors import ApplicationError, Conflict, InvalidInput
from sagas.models import TERMINAL_SAGA_STATES, Saga, SagaState
from sagas.services import saga_run_inline, saga_start
from tenants import servers
from tenants.models import Placement, Tenant, TenantMove
from tenants.moves.sagas import SAGA_TYPE

COMMAND = SystemActor("manage.py move_tenant")


class MoveFailed(ApplicationError):
    """The move was rolled back; the message says why in one sentence."""


def move_validate(*, tenant: Tenant, to: str, server: str = "") -> None:
    if to not in Tenant.Isolation.values:
        raise InvalidInput(f"The target level must be one of: {', '.join(Tenant.Isolation.values)}.")
    if server:
        # The registry (tenants.servers): it exists, is active, takes the level and has room.
        servers.server_check_takes(servers.server_get(server), to)
    if tenant.status != Tenant.Status.ACTIVE or tenant.placement_id is None:
        raise Conflict(f"{tenant.name} is {tenant.get_status_display().lower()}; only an active tenant can be moved.")
    if to == Tenant.Isolation.SCHEMA and tenant.placement and tenant.placement.kind == Placement.Kind.SCHEMA:
        # Only to another server: a schema → schema move on one server would change nothing.
        if not server or servers.placement_server(tenant.placement).name == server:
            raise InvalidInput(f"{tenant.name} already has its own schema.")
    if TenantMove.objects.filter(tenant=tenant, state=TenantMove.State.RUNNING).exists():
        raise Conflict(f"{tenant.name} is already being moved.")


def tenant_move(
    *, tenant: Tenant, to: str, actor: Actor, server: str = "", fault: dict | None = None,
    request: HttpRequest | None = None,
) -> TenantMove:  # fmt: skip
    """Validate, then start moving `tenant` to isolation level `to` (pool → pool and database →
    database included). Raises InvalidInput / Conflict with one sentence."""
    tenant = Tenant.objects.select_related("placement").get(pk=tenant.pk)
    move_validate(tenant=tenant, to=to, server=server)
    source = tenant.placement
    data: dict[str, Any] = {"tenant_id": str(tenant.pk)}
    if fault:
        data["_fault"] = fault  # honoured only under test settings (tests/support/faults.py)
    try:
        with transaction.atomic():
            move = TenantMove.objects.create(
                tenant=tenant, source_placement=source, source_label=str(source), source_isolation=tenant.isolation,
                target_isolation=to, server=server, requested_by=actor_label(actor)[:150], phase="queued",
            )  # fmt: skip
            data["move_id"] = str(move.pk)
            saga = saga_start(
                saga_type=SAGA_TYPE, input=data, tenant_id=tenant.pk, tenant_label=tenant.slug, actor=actor
            )
            TenantMove.objects.filter(pk=move.pk).update(saga_id=saga.pk)
            audit_record(
                actor=actor,
                action=AuditAction.TENANT_MOVE,
                target_type="tenant",
                target_id=tenant.pk,
                summary=f"Moving {tenant.slug}: {tenant.isolation} ({source}) → {to}",
                request=request,
                details={"move_id": str(move.pk), "saga_id": str(saga.pk), "from": tenant.isolation, "to": to,
                         "server": server},
            )  # fmt: skip
    except IntegrityError:  # a concurrent request started a move first (one running move per tenant)
        raise Conflict(f"{tenant.name} is already being moved.") from None
    move.refresh_from_db()
    return move


def tenant_move_and_wait(
    *, tenant: Tenant, to: str, server: str = "", actor: Actor = COMMAND, wait: bool = True,
    progress: Callable[[str], Any] = lambda line: None, worker_grace_seconds: float = 10.0,
) -> TenantMove:  # fmt: skip
    """Start a move and (by default) follow it to its end, like `provision_tenant`: if no worker has
    claimed a step after `worker_grace_seconds`, run the saga's jobs in this process."""
    move = tenant_move(tenant=tenant, to=to, server=server, actor=actor)
    progress(f"move {move.pk} started (saga {move.saga_id})")
    if not wait:
        return move
    started, last = time.monotonic(), ""
    while True:
        saga = Saga.objects.get(pk=str(move.saga_id))
        move.refresh_from_db()
        line = f"… {move.phase} ({move.rows_copied}/{move.rows_total} rows)"
        if line != last:
            progress(line)
            last = line
        if saga.state in TERMINAL_SAGA_STATES:
            break
        if time.monotonic() - started > worker_grace_seconds and not saga.steps.filter(job__attempts__gt=0).exists():
            progress("no Celery worker picked the move up; running it in this process")
            saga_run_inline(saga_id=saga.pk, timeout=3600)
            continue
        time.sleep(0.2)
    move.refresh_from_db()
    if saga.state != SagaState.COMPLETED:
        reason = move.error or (saga.error.splitlines()[0] if saga.error else saga.state)
        raise MoveFailed(f"The move was rolled back: {reason}")
    if move.freeze_seconds is not None:
        progress(f"writes were frozen for {move.freeze_seconds:.3f} s")
    return move
