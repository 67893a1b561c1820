"""Plan changes: a tenant's plan maps to an isolation level (TENANCY_PLAN_ISOLATION); changing to a
plan on another level moves the tenant, after the operator confirms it.

    tenant_change_plan(tenant=t, plan="enterprise", confirm_move=True, actor=request.user)

Without `confirm_move`, a change that needs a move is refused with the sentence saying which move
(the screen shows it as the question to confirm). Quotas per plan are not enforced yet (no usage
metering exists); the plan is recorded for when they are.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import InvalidInput
from tenants.lifecycle import tenant_event
from tenants.models import Tenant, TenantMove
from tenants.moves.services import tenant_move


def isolation_for(plan: str) -> str:
    return settings.TENANCY_PLAN_ISOLATION.get(plan, Tenant.Isolation.SHARED)


def tenant_change_plan(
    *, tenant: Tenant, plan: str, actor: Actor, confirm_move: bool = False, request: HttpRequest | None = None
) -> TenantMove | None:
    """Set the tenant's plan; if its level differs, start the move too (same transaction). Returns the move."""
    if plan not in Tenant.Plan.values:
        raise InvalidInput(f"Plan must be one of: {', '.join(Tenant.Plan.values)}.")
    if plan == tenant.plan:
        raise InvalidInput(f"{tenant.name} is already on the {plan} plan.")
    level = isolation_for(plan)
    needs_move = level != tenant.isolation
    if needs_move and not confirm_move:
        raise InvalidInput(
            f"The {plan} plan runs on the {level} level; confirm moving {tenant.name} from {tenant.isolation} to {level}."
        )
    with transaction.atomic():
        previous = tenant.plan
        Tenant.objects.filter(pk=tenant.pk).update(plan=plan, updated_at=timezone.now())
        tenant_event(tenant.pk, "TenantPlanChanged", plan=plan, previous_plan=previous)
        audit_record(
            actor=actor, action=AuditAction.TENANT_PLAN_CHANGE, target_type="tenant", target_id=tenant.pk,
            summary=f"{tenant.slug}: plan {previous} → {plan}" + (f", moving to {level}" if needs_move else ""),
            request=request, details={"from": previous, "to": plan, "isolation": level, "move": needs_move},
        )  # fmt: skip
        move = tenant_move(tenant=tenant, to=level, actor=actor, request=request) if needs_move else None
    tenant.refresh_from_db()
    return move
