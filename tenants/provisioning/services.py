"""Starting provisioning: the one entry point behind the screen, the API, signup and the command.

    saga = tenant_provision(slug="acme", isolation="schema", actor=request.user, request=request)

validates everything first (one sentence on bad input, nothing created), then starts the
provisioning saga of the isolation level (sagas.py); a Celery worker runs its steps.
`tenant_provision_and_wait` is what `manage.py provision_tenant` does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, SystemActor, actor_user
from sagas.models import TERMINAL_SAGA_STATES, Saga, SagaState, StepState
from sagas.services import saga_run_inline, saga_start
from tenants import crypto
from tenants.models import Tenant
from tenants.provisioning.sagas import SAGA_TYPES
from tenants.provisioning.steps import ProvisioningError
from tenants.services import tenant_validate_new

COMMAND = SystemActor("manage.py provision_tenant")


def isolation_for_plan(plan: str) -> str:
    """The isolation level a self-signup on `plan` gets (operators choose freely)."""
    return settings.TENANCY_PLAN_ISOLATION.get(plan, Tenant.Isolation.SHARED)


def tenant_provision(
    *,
    slug: str,
    isolation: str,
    actor: Actor,
    name: str = "",
    plan: str = Tenant.Plan.FREE,
    owner_email: str = "",
    idempotency_key: str | None = None,
    owner_password_hash: str = "",
    fault: dict | None = None,
    request: HttpRequest | None = None,
    pool_id: int | None = None,
) -> Saga:
    """Validate, then start the provisioning saga for one new tenant. Raises InvalidInput (one sentence).

    The same idempotency key (a double submit, a retried API call, a second click on a signup link)
    returns the first request's saga. An operator's request is audited in the saga's transaction.
    """
    if idempotency_key:
        existing = Saga.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    values = tenant_validate_new(slug=slug, name=name, isolation=isolation, plan=plan, owner_email=owner_email)
    tenant_id = str(uuid.uuid4())
    data: dict[str, Any] = {**values, "tenant_id": tenant_id}
    if owner_password_hash:
        data["owner_password_hash_enc"] = crypto.encrypt_json({"hash": owner_password_hash})
    if pool_id is not None and isolation == Tenant.Isolation.SHARED:
        data["pool_id"] = pool_id  # a restore chose the pool (no id of the export is taken there)
    if fault:
        data["_fault"] = fault  # honoured only under test settings (tests/support/faults.py)
    with transaction.atomic():
        saga = saga_start(
            saga_type=SAGA_TYPES[isolation],
            input=data,
            tenant_id=tenant_id,
            tenant_label=slug,
            idempotency_key=idempotency_key,
            actor=actor,
        )
        if actor_user(actor) is not None and str(saga.tenant_id) == tenant_id:
            audit_record(
                actor=actor,
                action=AuditAction.TENANT_PROVISION,
                target_type="tenant",
                target_id=tenant_id,
                summary=f"Provisioning {slug} ({isolation})",
                request=request,
                details={"saga_id": str(saga.id), "isolation": isolation, "plan": values["plan"]},
            )
    return saga


def tenant_provision_and_wait(
    *,
    slug: str,
    isolation: str,
    name: str = "",
    plan: str = Tenant.Plan.FREE,
    owner_email: str = "",
    actor: Actor = COMMAND,
    wait: bool = True,
    progress: Callable[[str], Any] = lambda line: None,
    worker_grace_seconds: float = 10.0,
    pool_id: int | None = None,
) -> str:
    """Start provisioning and (by default) follow the saga to its end; returns the tenant's uuid.

    A Celery worker normally runs the steps. If none has claimed the first step after
    `worker_grace_seconds`, this process runs the saga's jobs itself through the same engine
    (claims make a late worker joining in harmless). Raises ProvisioningError with the saga's
    one-line reason if it ends compensated or failed.
    """
    saga = tenant_provision(
        slug=slug, isolation=isolation, name=name, plan=plan, owner_email=owner_email, actor=actor, pool_id=pool_id
    )
    progress(f"saga {saga.id} started ({saga.saga_type})")
    if not wait:
        return str(saga.tenant_id)
    started, reported = time.monotonic(), set()
    while True:
        saga = Saga.objects.get(pk=saga.pk)
        for step in saga.steps.filter(state__in=[StepState.COMPLETED, StepState.COMPENSATED]).order_by("index"):
            if (step.name, step.state) not in reported:
                reported.add((step.name, step.state))
                progress(f"… {step.name} {'done' if step.state == StepState.COMPLETED else 'undone'}")
        if saga.state in TERMINAL_SAGA_STATES:
            break
        if time.monotonic() - started > worker_grace_seconds and not saga.steps.filter(job__attempts__gt=0).exists():
            progress("no Celery worker picked the saga up; running it in this process")
            saga = saga_run_inline(saga_id=saga.id)
            continue
        time.sleep(0.2)
    if saga.state != SagaState.COMPLETED:
        reason = saga.error.splitlines()[0] if saga.error else f"Provisioning ended {saga.state}."
        raise ProvisioningError(f"Provisioning failed and was rolled back: {reason}")
    return str(saga.tenant_id)
