"""Provisioning sagas, one per isolation level, built on tenants.provisioning's steps.

    provision.shared     register → begin → place_in_pool → owner member → password → domain → activate
    provision.schema     register → begin → create_schema → …
    provision.dedicated  register → begin → create_database → verify_database → …

The tenant's uuid is chosen when the saga starts (input["tenant_id"]), so the first step
can create the Tenant row idempotently and its compensation can delete exactly that row:
a compensated saga leaves no tenant row, schema, database or alias behind.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from events.sagas.registry import PermanentStepError, SagaDefinition, StepContext, StepDefinition, saga_register
from tenants.lifecycle import registered_data, tenant_event
from tenants.models import Tenant
from tenants.provisioning import PROVISIONING_STEPS, ProvisioningError, Step

SAGA_TYPES = {isolation: f"provision.{isolation}" for isolation in Tenant.Isolation.values}


def _tenant_id(ctx: StepContext) -> str:
    return ctx.value("tenant_id")


def register_tenant(ctx: StepContext) -> dict[str, Any]:
    """Create the Tenant row in `pending` with the uuid chosen at saga start (idempotent)."""
    from tenants.services import tenant_validate_new

    tenant_id = _tenant_id(ctx)
    if Tenant.objects.filter(pk=tenant_id).exists():
        return {"tenant_id": tenant_id}
    try:
        values = tenant_validate_new(
            slug=ctx.input["slug"],
            name=ctx.input.get("name", ""),
            isolation=ctx.input["isolation"],
            plan=ctx.input.get("plan", Tenant.Plan.FREE),
            owner_email=ctx.input.get("owner_email", ""),
        )
        with transaction.atomic():
            tenant = Tenant.objects.create(
                pk=tenant_id, **values, status=Tenant.Status.PENDING, status_changed_at=timezone.now()
            )
            tenant_event(tenant_id, "TenantRegistered", **registered_data(tenant))
    except ValidationError as exc:
        raise PermanentStepError(exc.messages[0]) from exc
    except IntegrityError as exc:
        raise PermanentStepError(f"A tenant with the slug “{ctx.input['slug']}” already exists.") from exc
    return {"tenant_id": tenant_id}


def register_tenant_compensate(ctx: StepContext) -> None:
    """Delete the row this saga created (never another tenant's: the uuid is ours)."""
    with transaction.atomic():
        deleted, _ = Tenant.objects.filter(pk=_tenant_id(ctx), placement__isnull=True).delete()
        if deleted:
            tenant_event(_tenant_id(ctx), "TenantRemoved", status=Tenant.Status.DELETED)
    if Tenant.objects.filter(pk=_tenant_id(ctx)).exists():
        raise RuntimeError("The tenant still has a placement; compensate the placement step first.")


def set_owner_password(ctx: StepContext) -> None:
    """Signup only: give the owner member the password chosen at signup (kept encrypted in the input)."""
    encrypted = ctx.input.get("owner_password_hash_enc")
    if not encrypted:
        return
    from tenants.context import tenant_context
    from tenants.crypto import decrypt_json
    from workspace.models import Member

    password_hash = decrypt_json(encrypted)["hash"]
    tenant = Tenant.objects.select_related("placement").get(pk=_tenant_id(ctx))
    if not tenant.owner_email:
        return
    with tenant_context(tenant) as alias:
        Member.objects.using(alias).filter(email=tenant.owner_email).update(password=password_hash)


def _adapt(step: Step) -> StepDefinition:
    """tenants.provisioning steps take a tenant id; saga steps take a StepContext."""

    def action(ctx: StepContext) -> None:
        try:
            step.action(_tenant_id(ctx))
        except ProvisioningError as exc:
            raise PermanentStepError(str(exc)) from exc

    def compensate(ctx: StepContext) -> None:
        step.compensate(_tenant_id(ctx))

    return StepDefinition(step.name, action, compensate, description=step.title)


def _definition(isolation: str) -> SagaDefinition:
    steps = [
        StepDefinition(
            "register_tenant", register_tenant, register_tenant_compensate, description="Register the tenant"
        )
    ]
    for step in PROVISIONING_STEPS[isolation]:
        steps.append(_adapt(step))
        if step.name == "create_owner_member":
            steps.append(
                StepDefinition("set_owner_password", set_owner_password, None, description="Set the owner's password")
            )
    return SagaDefinition(SAGA_TYPES[isolation], f"Provision a {isolation} tenant", tuple(steps))


for _isolation in Tenant.Isolation.values:
    saga_register(_definition(_isolation))


def isolation_for_plan(plan: str) -> str:
    return settings.TENANCY_PLAN_ISOLATION.get(plan, Tenant.Isolation.SHARED)


def provisioning_start(
    *,
    slug: str,
    isolation: str,
    name: str = "",
    plan: str = Tenant.Plan.FREE,
    owner_email: str = "",
    requested_by: Any = None,
    idempotency_key: str | None = None,
    owner_password_hash: str = "",
    fault: dict | None = None,
    request: Any = None,
):
    """Validate, then start the provisioning saga for one new tenant. Raises ValidationError (one sentence).

    An operator's request is audited in the same transaction as the saga's creation.
    """
    from events.sagas.models import Saga
    from events.sagas.services import saga_start
    from tenants.services import tenant_validate_new

    if idempotency_key:  # a double submit or a retried API call: the first request's saga, not an error
        existing = Saga.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    values = tenant_validate_new(slug=slug, name=name, isolation=isolation, plan=plan, owner_email=owner_email)
    tenant_id = str(uuid.uuid4())
    data: dict[str, Any] = {**values, "tenant_id": tenant_id}
    if owner_password_hash:
        from tenants.crypto import encrypt_json

        data["owner_password_hash_enc"] = encrypt_json({"hash": owner_password_hash})
    if fault:
        data["_fault"] = fault
    with transaction.atomic():
        saga = saga_start(
            saga_type=SAGA_TYPES[isolation],
            input=data,
            tenant_id=tenant_id,
            tenant_label=slug,
            idempotency_key=idempotency_key,
            requested_by=requested_by,
        )
        if getattr(requested_by, "is_authenticated", False) and str(saga.tenant_id) == tenant_id:
            audit_record(
                actor=requested_by,
                action=AuditAction.TENANT_PROVISION,
                target_type="tenant",
                target_id=tenant_id,
                summary=f"Provisioning {slug} ({isolation})",
                request=request,
                details={"saga_id": str(saga.id), "isolation": isolation, "plan": values["plan"]},
            )
    return saga


def provisioning_run_command(
    *,
    slug: str,
    isolation: str,
    name: str = "",
    plan: str = Tenant.Plan.FREE,
    owner_email: str = "",
    wait: bool = True,
    progress=lambda line: None,
    worker_grace_seconds: float = 10.0,
) -> str:
    """What `manage.py provision_tenant` does: start the saga, then (by default) follow it to the end.

    A Celery worker normally runs the steps. If none has claimed the first step after
    `worker_grace_seconds`, this process drives the saga itself through the same engine
    (claims make a late worker joining in harmless). Raises ProvisioningError with the
    saga's one-line reason if it ends compensated or failed.
    """
    import time

    from events.sagas import services
    from events.sagas.models import TERMINAL_SAGA_STATES, Saga, SagaState, StepState

    saga = provisioning_start(slug=slug, isolation=isolation, name=name, plan=plan, owner_email=owner_email)
    progress(f"saga {saga.id} started ({saga.saga_type})")
    if not wait:
        return str(saga.tenant_id)
    started, reported, driving = time.monotonic(), set(), False
    while True:
        saga = Saga.objects.get(pk=saga.pk)
        for step in saga.steps.filter(state__in=[StepState.COMPLETED, StepState.COMPENSATED]).order_by("index"):
            key = (step.name, step.state)
            if key not in reported:
                reported.add(key)
                verb = "done" if step.state == StepState.COMPLETED else "undone"
                progress(f"… {step.name} {verb}")
        if saga.state in TERMINAL_SAGA_STATES:
            break
        if not driving and time.monotonic() - started > worker_grace_seconds:
            if not saga.steps.exclude(attempts=0).exists():
                progress("no Celery worker picked the saga up; running it in this process")
                driving = True
        if driving:
            services.saga_sweep()  # nobody else resumes a step whose lease ran out
            if saga.state == SagaState.COMPENSATING:
                services.saga_compensate_next(saga_id=saga.id)
            else:
                step = saga.steps.exclude(state=StepState.COMPLETED).order_by("index").first()
                if step is not None and services.saga_step_execute(step_id=step.id) in ("not-due", "step-running"):
                    time.sleep(0.2)
        else:
            time.sleep(0.2)
    if saga.state != SagaState.COMPLETED:
        raise ProvisioningError(saga.error.splitlines()[0] if saga.error else f"Provisioning ended {saga.state}.")
    return str(saga.tenant_id)
