"""Reads of the saas_admin app: operators and API tokens."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Prefetch, QuerySet

from core import limits
from core.permissions import ROLE_BY_GROUP, Role, operator_role
from saas_admin.mfa import device_summary
from saas_admin.models import ApiToken
from saas_admin.services import LOCK_SCOPE

User = get_user_model()


def operator_list() -> list[Any]:
    """All staff users with `.role` (None when they hold no role group), active first."""
    users = list(
        User.objects.filter(is_staff=True)
        .prefetch_related(Prefetch("groups", queryset=Group.objects.filter(name__in=ROLE_BY_GROUP)))
        .order_by("-is_active", "username")
    )
    for user in users:
        roles = [ROLE_BY_GROUP[g.name] for g in user.groups.all()]
        user.role = Role.ADMIN if user.is_superuser else max(roles, default=None)  # type: ignore[attr-defined]  # for the template
        user.locks = limits.signin_locks(LOCK_SCOPE, user.username)  # type: ignore[attr-defined]  # for the template
        user.mfa_devices = device_summary(user)  # type: ignore[attr-defined]
    return users


def operator_counts_by_role() -> dict[str, int]:
    """Active operators per role, e.g. {"Admin": 1, "Operator": 3, "Viewer": 2, "No role": 0}."""
    counts = {role.group_name: 0 for role in sorted(Role, reverse=True)}
    counts["No role"] = 0
    for user in operator_list():
        if user.is_active:
            counts[user.role.group_name if user.role else "No role"] += 1
    return counts


def operator_get(user_id: int) -> Any:
    user = User.objects.filter(pk=user_id, is_staff=True).first()
    if user is not None:
        user.role = operator_role(user)  # type: ignore[attr-defined]  # for the template
    return user


def token_list_for(*, user: Any) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at")


def token_list_all() -> QuerySet[ApiToken]:
    """Every operator's usable tokens, for Admins."""
    return (
        ApiToken.objects.filter(revoked_at__isnull=True)
        .select_related("user")
        .order_by("user__username", "-created_at")
    )
