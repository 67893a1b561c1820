"""Provisioning sagas, one per isolation level, built on the idempotent steps in steps.py.

    provision.shared     register_tenant → begin → place_in_pool → create_owner_member → set_owner_password → create_domain → activate → email_owner
    provision.schema     register_tenant → begin → create_schema → …
    provision.dedicated  register_tenant → begin → create_database → verify_database → …

The tenant's uuid is chosen when the saga starts (input["tenant_id"]), so the first step can
create the Tenant row idempotently and its compensation can delete exactly that row: a
compensated saga leaves no tenant row, schema, database or alias behind. Each saga step looks
its provisioning step up by name when it runs, so steps.PROVISIONING_STEPS is the one list.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from core.errors import InvalidInput
from sagas.registry import PermanentStepError, SagaDefinition, StepContext, StepDefinition, saga_register
from tenants import crypto
from tenants.context import tenant_context
from tenants.lifecycle import registered_data, tenant_event
from tenants.models import Tenant
from tenants.provisioning.steps import PROVISIONING_STEPS, ProvisioningError
from tenants.services import tenant_validate_new, workspace_url
from workspace import interface as workspace

logger = logging.getLogger(__name__)

SAGA_TYPES = {isolation: f"provision.{isolation}" for isolation in Tenant.Isolation.values}


def _tenant_id(ctx: StepContext) -> str:
    return ctx.value("tenant_id")


def register_tenant(ctx: StepContext) -> dict[str, Any]:
    """Create the Tenant row in `pending` with the uuid chosen at saga start (idempotent)."""
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
            # A restore into a pool names the pool it checked for id collisions (tenants/exports/services.py);
            # place_in_pool then keeps it.
            tenant = Tenant.objects.create(
                pk=tenant_id, **values, status=Tenant.Status.PENDING, status_changed_at=timezone.now(),
                placement_id=ctx.input.get("pool_id"),
            )  # fmt: skip
            tenant_event(tenant_id, "TenantRegistered", **registered_data(tenant))
    except (InvalidInput, ValidationError) as exc:
        raise PermanentStepError(str(exc) if isinstance(exc, InvalidInput) else exc.messages[0]) from exc
    except IntegrityError as exc:
        raise PermanentStepError(f"A tenant with the slug “{ctx.input['slug']}” already exists.") from exc
    return {"tenant_id": tenant_id}


def register_tenant_compensate(ctx: StepContext) -> None:
    """Delete the row this saga created (never another tenant's: the uuid is ours)."""
    with transaction.atomic():
        if ctx.input.get("pool_id"):  # the pool given at creation; nothing was written there before place_in_pool
            Tenant.objects.filter(pk=_tenant_id(ctx), placement_id=ctx.input["pool_id"]).update(placement=None)
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
    tenant = Tenant.objects.select_related("placement").get(pk=_tenant_id(ctx))
    if not tenant.owner_email:
        return
    with tenant_context(tenant):
        workspace.member_set_password_hash(
            email=tenant.owner_email, password_hash=crypto.decrypt_json(encrypted)["hash"]
        )


def email_owner(ctx: StepContext) -> dict[str, Any] | None:
    """Operator-provisioned tenants: email the owner a set-password link to their workspace (in
    development it lands in the Outbox). Signup owners chose a password already, so they get none.
    After `activate`, so the link works when it arrives. A worker that dies after sending but before
    recording the step sends a second email on retry; both links work until one is used. A mail
    server that is down never undoes the tenant: the step records that no email went out, and the
    owner can still use "Forgot your password?" on the workspace's sign-in page."""
    if ctx.input.get("owner_password_hash_enc"):
        return None
    tenant = Tenant.objects.select_related("placement").get(pk=_tenant_id(ctx))
    if not tenant.owner_email or tenant.placement is None:
        return None
    with tenant_context(tenant):
        invitation = workspace.owner_invitation(email=tenant.owner_email)
    if invitation is None:
        return None  # the owner has set a password already (a retry after they followed the first link)
    name, token = invitation
    context = {
        "member": {"name": name},
        "workspace": tenant.name,
        "link": workspace_url(tenant.slug, f"/set-password/{token}/"),
        "hours": int(settings.WORKSPACE_INVITE_MAX_AGE_SECONDS) // 3600,
        "inviter": None,
    }
    try:
        send_mail(
            subject=f"Your workspace {tenant.name} is ready",
            message=render_to_string("emails/workspace_invite.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[tenant.owner_email],
        )
    except OSError as exc:  # smtplib's errors are OSErrors
        logger.warning("owner email for tenant %s not sent: %s", tenant.slug, exc)
        return {"owner_emailed": False, "owner_email_error": str(exc)[:200]}
    return {"owner_emailed": True}


def _adapted(isolation: str, name: str, title: str) -> StepDefinition:
    """A saga step that runs provisioning step `name` (looked up when it runs) for the saga's tenant."""

    def step() -> Any:
        return next(s for s in PROVISIONING_STEPS[isolation] if s.name == name)

    def action(ctx: StepContext) -> None:
        try:
            step().action(_tenant_id(ctx))
        except ProvisioningError as exc:
            raise PermanentStepError(str(exc)) from exc

    def compensate(ctx: StepContext) -> None:
        step().compensate(_tenant_id(ctx))

    return StepDefinition(name, action, compensate, description=title)


def _definition(isolation: str) -> SagaDefinition:
    steps = [
        StepDefinition(
            "register_tenant", register_tenant, register_tenant_compensate, description="Register the tenant"
        )
    ]
    for step in PROVISIONING_STEPS[isolation]:
        steps.append(_adapted(isolation, step.name, step.title))
        if step.name == "create_owner_member":
            steps.append(
                StepDefinition("set_owner_password", set_owner_password, None, description="Set the owner's password")
            )
    steps.append(
        StepDefinition(
            "email_owner",
            email_owner,
            None,
            description="Email the owner a set-password link (if they have no password yet)",
        )
    )
    return SagaDefinition(SAGA_TYPES[isolation], f"Provision a {isolation} tenant", tuple(steps))


for _isolation in Tenant.Isolation.values:
    saga_register(_definition(_isolation))
