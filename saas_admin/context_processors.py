from __future__ import annotations

from django.http import HttpRequest

from core.permissions import Role, operator_role


def operator_roles(request: HttpRequest) -> dict:
    """Role flags for templates. Only for showing or hiding buttons: views check again."""
    role = operator_role(getattr(request, "user", None))
    return {
        "operator_role": role,
        "can_operate": role is not None and role >= Role.OPERATOR,
        "can_admin": role is not None and role >= Role.ADMIN,
    }
