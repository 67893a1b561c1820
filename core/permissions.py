"""Operator roles, enforced server-side by one reusable check.

Roles are Django groups, ordered: Viewer (read only) < Operator (day-to-day
actions) < Admin (migrations, moves, deletion, erasure, operators). A role
includes everything below it. Superusers are Admins. Only staff users are
operators at all; tenant members never reach the dashboard.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from core.errors import Forbidden


class Role(enum.IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def group_name(self) -> str:
        return self.name.capitalize()


ROLE_BY_GROUP = {role.group_name: role for role in Role}
# Outside the ordered roles: an external auditor reads compliance, the audit trail and the event log,
# and nothing else (no tenants, jobs or operators), and changes nothing.
AUDITOR_GROUP = "Auditor"


def operator_role(user: Any) -> Role | None:
    """The highest role the user holds, or None for non-operators."""
    if not getattr(user, "is_authenticated", False) or not user.is_active or not user.is_staff:
        return None
    if user.is_superuser:
        return Role.ADMIN
    cached: Role | None | bool = getattr(user, "_operator_role_cache", False)
    if cached is not False:
        return cached  # type: ignore[return-value]  # a Role or None once cached
    names = user.groups.filter(name__in=ROLE_BY_GROUP).values_list("name", flat=True)
    role = max((ROLE_BY_GROUP[name] for name in names), default=None)
    user._operator_role_cache = role
    return role


def has_role(user: Any, role: Role) -> bool:
    held = operator_role(user)
    return held is not None and held >= role


def check_role(user: Any, role: Role) -> None:
    """Raise Forbidden (a PermissionDenied: the 403 page) unless the user holds `role` or higher."""
    if not has_role(user, role):
        raise Forbidden(f"This needs the {role.group_name} role.")


def role_required(role: Role) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """View decorator: anonymous users go to sign-in; signed-in users without the role get 403."""

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            check_role(request.user, role)
            return view(request, *args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]
        return wrapped

    return decorator


def is_auditor(user: Any) -> bool:
    """An active staff user in the Auditor group (read-only: compliance, audit trail, event log)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active or not user.is_staff:
        return False
    cached: bool | None = getattr(user, "_auditor_cache", None)
    if cached is None:
        cached = user.groups.filter(name=AUDITOR_GROUP).exists()
        user._auditor_cache = cached
    return cached


def can_read_governance(user: Any) -> bool:
    """Whether `user` may read compliance, the audit trail and the event log: Viewer+ or an Auditor."""
    return has_role(user, Role.VIEWER) or is_auditor(user)


def reader_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """View decorator for the governance screens: Viewer+ or Auditor; anonymous users go to sign-in."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can_read_governance(request.user):
            raise Forbidden("This needs the Viewer or Auditor role.")
        return view(request, *args, **kwargs)

    wrapped.required_role = Role.VIEWER  # type: ignore[attr-defined]
    return wrapped
