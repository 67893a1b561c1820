"""Checks about who may do what: role grants attributed, access reviews done."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from audit.actions import AuditAction
from audit.models import AuditEntry
from compliance.checks.registry import Outcome, check
from compliance.models import AccessReview
from core.permissions import operator_role


def active_operators() -> list[tuple[User, str]]:
    """(user, role name) for every active staff user holding a role."""
    found = []
    for user in User.objects.filter(is_active=True, is_staff=True).prefetch_related("groups").order_by("username"):
        role = operator_role(user)
        if role is not None:
            found.append((user, role.group_name))
    return found


@check("privileged_roles")
def privileged_roles() -> Outcome:
    """Proves every active operator's current role was granted by a recorded actor: an `operator.create` or
    `operator.role_change` audit row names the user and the role they hold now. Superusers created
    outside the dashboard have no such row and fail, Admins first in the list.

    Evidence: the inventory (username, role, granted by, when) and the operators without a grant."""
    operators = active_operators()
    grants: dict[str, tuple[str, str]] = {}
    rows = AuditEntry.objects.filter(
        action__in=[AuditAction.OPERATOR_CREATE, AuditAction.OPERATOR_ROLE_CHANGE], target_type="user"
    ).order_by("occurred_at", "id")
    for entry in rows.values("target_id", "actor_label", "occurred_at", "details"):
        role = entry["details"].get("to") or entry["details"].get("role")
        grants[entry["target_id"]] = (role or "", f"{entry['actor_label']} at {entry['occurred_at'].isoformat()}")
    inventory, problems = [], []
    for user, role in operators:
        granted = grants.get(str(user.pk))
        inventory.append({"username": user.username, "role": role, "granted": granted[1] if granted else None})
        if granted is None or granted[0] != role:
            problems.append({"username": user.username, "role": role, "superuser": user.is_superuser})
    problems.sort(key=lambda p: (p["role"] != "Admin", p["username"]))
    return Outcome.judged(
        problems,
        f"All {len(operators)} operators' roles were granted by a recorded actor.",
        "{n} operators hold a role no audited grant explains"
        + (f", {sum(p['role'] == 'Admin' for p in problems)} of them Admins." if problems else "."),
        inventory=inventory,
    )


@check("access_review")
def access_review() -> Outcome:
    """Proves an access review was completed within COMPLIANCE_ACCESS_REVIEW_DAYS and covered every operator
    who is active now (each confirmed or revoked by an Admin other than themselves).

    Evidence: the latest completed review, its decisions, and operators it did not cover."""
    period = int(settings.COMPLIANCE_ACCESS_REVIEW_DAYS)
    since = timezone.now() - timedelta(days=period)
    review = AccessReview.objects.filter(completed_at__isnull=False).order_by("-completed_at").first()
    if review is None:
        return Outcome.failed("No access review has been completed yet.", period_days=period)
    decisions = list(review.decisions.values("operator_id", "operator_label", "role", "decision", "decided_by_label"))
    covered = {d["operator_id"] for d in decisions}
    uncovered = [u.username for u, _ in active_operators() if u.pk not in covered]
    evidence = {
        "review_id": review.pk,
        "completed_at": review.completed_at.isoformat() if review.completed_at else None,
        "period_days": period,
        "decisions": decisions,
        "not_covered": uncovered,
    }
    if review.completed_at is None or review.completed_at < since:
        return Outcome.failed(f"The last access review was completed more than {period} days ago.", **evidence)
    if uncovered:
        return Outcome.failed(f"{len(uncovered)} current operators were not in the last access review.", **evidence)
    return Outcome.passed(f"Access review #{review.pk} covered every operator within {period} days.", **evidence)
