"""Writes of the saas_admin app: operators, API tokens, sign-in lockout.

Every function that changes something records an audit entry in the same
transaction (audit.services.audit_record).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.models import AuditEntry
from audit.services import audit_record
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.permissions import Role, operator_role
from saas_admin.models import ApiToken

TOKEN_PREFIX = "cpt_"


# --- Operators ------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedOperator:
    user: Any
    password: str


def _set_role(user: Any, role: Role) -> None:
    role_groups = Group.objects.filter(name__in=[r.group_name for r in Role])
    user.groups.remove(*role_groups)
    user.groups.add(Group.objects.get(name=role.group_name))
    user._operator_role_cache = role


def operator_create(
    *, actor: User, username: str, email: str, role: Role, request: HttpRequest | None = None
) -> CreatedOperator:
    """Create a staff user with one role and a generated one-time password."""
    username = username.strip()
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict(f"An account named “{username}” already exists.")
    password = secrets.token_urlsafe(12)
    with transaction.atomic():
        user = User(username=username, email=email.strip(), is_staff=True)
        user.set_password(password)
        user.save()
        _set_role(user, role)
        audit_record(
            actor=actor,
            action=AuditAction.OPERATOR_CREATE,
            target_type="user",
            target_id=user.pk,
            summary=f"Created operator {username} with role {role.group_name}",
            request=request,
            details={"username": username, "role": role.group_name},
        )
    return CreatedOperator(user=user, password=password)


def _operator_for_change(actor: User, user_id: int) -> Any:
    try:
        user = User.objects.select_for_update().get(pk=user_id, is_staff=True)
    except User.DoesNotExist:
        raise NotFound("That operator does not exist.") from None
    if user.pk == actor.pk:
        raise Conflict("You cannot change your own role or access; ask another admin.")
    return user


def operator_change_role(*, actor: User, user_id: int, role: Role, request: HttpRequest | None = None) -> Any:
    with transaction.atomic():
        user = _operator_for_change(actor, user_id)
        if user.is_superuser:
            raise Conflict(f"{user.username} is a superuser and always has the Admin role.")
        before = operator_role(user)
        if before == role:
            raise Conflict(f"{user.username} already has the {role.group_name} role.")
        _set_role(user, role)
        audit_record(
            actor=actor,
            action=AuditAction.OPERATOR_ROLE_CHANGE,
            target_type="user",
            target_id=user.pk,
            summary=f"Changed {user.username} from {before.group_name if before else 'no role'} to {role.group_name}",
            request=request,
            details={"username": user.username, "from": before.group_name if before else None, "to": role.group_name},
        )
    return user


def operator_set_active(*, actor: User, user_id: int, active: bool, request: HttpRequest | None = None) -> Any:
    """Deactivate (or reactivate) an operator. Deactivation also revokes their API tokens."""
    with transaction.atomic():
        user = _operator_for_change(actor, user_id)
        if user.is_active == active:
            raise Conflict(f"{user.username} is already {'active' if active else 'deactivated'}.")
        user.is_active = active
        user.save(update_fields=["is_active"])
        revoked = 0
        if not active:
            revoked = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
        audit_record(
            actor=actor,
            action=AuditAction.OPERATOR_ACTIVATE if active else AuditAction.OPERATOR_DEACTIVATE,
            target_type="user",
            target_id=user.pk,
            summary=f"{'Reactivated' if active else 'Deactivated'} operator {user.username}"
            + (f" and revoked {revoked} API token(s)" if revoked else ""),
            request=request,
            details={"username": user.username, "tokens_revoked": revoked},
        )
    return user


def operator_reset_password(*, actor: User, user_id: int, request: HttpRequest | None = None) -> CreatedOperator:
    """Replace an operator's password with a generated one-time password."""
    password = secrets.token_urlsafe(12)
    with transaction.atomic():
        user = _operator_for_change(actor, user_id)
        user.set_password(password)
        user.save(update_fields=["password"])
        audit_record(
            actor=actor,
            action=AuditAction.OPERATOR_PASSWORD_RESET,
            target_type="user",
            target_id=user.pk,
            summary=f"Reset the password of {user.username}",
            request=request,
            details={"username": user.username},
        )
    return CreatedOperator(user=user, password=password)


# --- API tokens -----------------------------------------------------------------


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    plaintext: str


def token_create(
    *, actor: User, name: str, expires_in_days: int | None, request: HttpRequest | None = None
) -> CreatedToken:
    """Create a token for `actor` itself. The plaintext is returned once and never stored."""
    name = name.strip()
    if not name:
        raise InvalidInput("Give the token a name so you can recognise it later.")
    if operator_role(actor) is None:
        raise Forbidden("Only operators can have API tokens.")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=actor,
            name=name,
            prefix=plaintext[:12],
            token_hash=hash_token(plaintext),
            created_at=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        )
        audit_record(
            actor=actor,
            action=AuditAction.TOKEN_CREATE,
            target_type="api_token",
            target_id=token.pk,
            summary=f"Created API token “{name}” ({token.prefix}…)",
            request=request,
            details={
                "name": name,
                "prefix": token.prefix,
                "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            },
        )
    return CreatedToken(token=token, plaintext=plaintext)


def token_revoke(*, actor: User, token_id: int, request: HttpRequest | None = None) -> ApiToken:
    """Revoke a token. Operators revoke their own; Admins may revoke anyone's."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().select_related("user").filter(pk=token_id).first()
        if token is None or (token.user_id != actor.pk and operator_role(actor) != Role.ADMIN):
            raise NotFound("That token does not exist.")
        if token.revoked_at is not None:
            raise Conflict("That token is already revoked.")
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action=AuditAction.TOKEN_REVOKE,
            target_type="api_token",
            target_id=token.pk,
            summary=f"Revoked API token “{token.name}” ({token.prefix}…) of {token.user.username}",
            request=request,
            details={"name": token.name, "prefix": token.prefix, "owner": token.user.username},
        )
    return token


# Write last_used_at at most this often per token, so API reads don't each cost a write.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


def token_authenticate(plaintext: str) -> tuple[Any, ApiToken] | None:
    """The operator and token for a presented plaintext, or None (unknown, revoked, expired, not an operator)."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(token_hash=hash_token(plaintext)).first()
    if token is None or not token.is_usable or operator_role(token.user) is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token.user, token


# --- Sign-in lockout ------------------------------------------------------------
# Failed sign-ins are already in the audit trail (auth_audit.py), so the
# limiter counts those rows: it works across processes and hosts with no
# extra service, and an operator can see exactly why an account was locked.

LOGIN_FAILED = AuditAction.AUTH_LOGIN_FAILED
LOGIN_SUCCEEDED = AuditAction.AUTH_LOGIN
LOGIN_BLOCKED = AuditAction.AUTH_LOGIN_BLOCKED


def login_lockout_reason(*, username: str, ip_address: str | None) -> str | None:
    """One sentence if sign-in must be refused before checking the password, else None."""
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    since = timezone.now() - window
    minutes = max(1, settings.LOGIN_FAILURE_WINDOW_SECONDS // 60)
    key = username.strip().lower()
    if key:
        last_success = (
            AuditEntry.objects.filter(
                action=LOGIN_SUCCEEDED, target_type="user_login", target_id=key, occurred_at__gte=since
            )
            .order_by("-occurred_at")
            .values_list("occurred_at", flat=True)
            .first()
        )
        failures = AuditEntry.objects.filter(
            action=LOGIN_FAILED, target_type="user_login", target_id=key, occurred_at__gte=last_success or since
        ).count()
        if failures >= settings.LOGIN_FAILURE_LIMIT:
            return f"Too many failed sign-ins for this account; try again in {minutes} minutes or ask an admin."
    if ip_address:
        failures = AuditEntry.objects.filter(action=LOGIN_FAILED, ip_address=ip_address, occurred_at__gte=since).count()
        if failures >= settings.LOGIN_FAILURE_IP_LIMIT:
            return f"Too many failed sign-ins from your network address; try again in {minutes} minutes."
    return None
