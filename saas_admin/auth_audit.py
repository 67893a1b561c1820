"""Audit trail receivers for sign-in, sign-out and failed sign-in (Django auth signals).

Passwords never reach the trail: only the attempted username, the address
and the user agent are stored. Usernames are stored lower-cased in
`target_id` (target_type "user_login"); the lockout counters themselves live in the shared
`limits` cache (saas_admin.services.login_failed, core/limits.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import SystemActor
from core.http import client_ip
from saas_admin.services import login_failed, login_succeeded


def _login_key(username: str) -> str:
    return (username or "").strip().lower()[:100]


@receiver(user_logged_in, dispatch_uid="saas_admin.audit_login")
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:

    audit_record(
        actor=user,
        action=AuditAction.AUTH_LOGIN,
        target_type="user_login",
        target_id=_login_key(user.get_username()),
        summary=f"{user.get_username()} signed in",
        request=request,
    )
    login_succeeded(username=user.get_username(), ip_address=client_ip(request))


@receiver(user_logged_out, dispatch_uid="saas_admin.audit_logout")
def audit_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:  # signing out without a session
        return

    audit_record(
        actor=user,
        action=AuditAction.AUTH_LOGOUT,
        target_type="user_login",
        target_id=_login_key(user.get_username()),
        summary=f"{user.get_username()} signed out",
        request=request,
    )


@receiver(user_login_failed, dispatch_uid="saas_admin.audit_login_failed")
def audit_login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:

    # `credentials` has the password masked by Django already; we still keep only the username.
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        actor=SystemActor(username or "anonymous"),
        action=AuditAction.AUTH_LOGIN_FAILED,
        target_type="user_login",
        target_id=_login_key(username),
        summary=f"Failed sign-in for “{username}”",
        request=request,
    )
    login_failed(username=username, ip_address=client_ip(request))
