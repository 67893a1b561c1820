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

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core import limits
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.permissions import Role, operator_role
from saas_admin.models import ApiToken, TokenScope

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


SCOPE_ROLE = {TokenScope.READ: Role.VIEWER, TokenScope.WRITE: Role.OPERATOR, TokenScope.ADMIN: Role.ADMIN}


def scope_role(scope: str) -> Role:
    return SCOPE_ROLE[TokenScope(scope)]


def token_create(
    *,
    actor: User,
    name: str,
    expires_in_days: int | None,
    scope: str = TokenScope.READ,
    request: HttpRequest | None = None,
) -> CreatedToken:
    """Create a token for `actor` itself. The plaintext is returned once and never stored.

    The scope may not exceed the operator's role, nor — when the request itself came with a token —
    that token's scope (a token never mints a stronger one)."""
    name = name.strip()
    if not name:
        raise InvalidInput("Give the token a name so you can recognise it later.")
    if "\x00" in name or len(name) > 100:
        raise InvalidInput("A token name is at most 100 characters, without NUL characters.")
    role = operator_role(actor)
    if role is None:
        raise Forbidden("Only operators can have API tokens.")
    if scope not in TokenScope.values:
        raise InvalidInput(f"The scope must be one of: {', '.join(TokenScope.values)}.")
    if scope_role(scope) > role:
        raise Forbidden(f"Your role ({role.group_name}) cannot have a token with the {scope} scope.")
    presenting = getattr(request, "api_token", None)
    if presenting is not None and scope_role(scope) > scope_role(presenting.scope):
        raise Forbidden(f"A {presenting.scope} token cannot create a token with the {scope} scope.")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=actor,
            name=name,
            scope=scope,
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
                "scope": scope,
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


def token_authenticate(plaintext: str, *, request: HttpRequest | None = None) -> tuple[Any, ApiToken] | None:
    """The operator and token for a presented plaintext, or None (unknown, revoked, expired, not an operator).

    A known token that is refused (expired, revoked, its owner no longer an operator) is audited."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200 or "\x00" in plaintext:
        return None
    token = ApiToken.objects.select_related("user").filter(token_hash=hash_token(plaintext)).first()
    if token is None:
        return None
    if not token.is_usable or operator_role(token.user) is None:
        why = token.state if not token.is_usable else "owner is no longer an operator"
        audit_record(
            actor=token.user,
            action=AuditAction.TOKEN_REFUSED,
            target_type="api_token",
            target_id=token.pk,
            summary=f"Refused API token “{token.name}” ({token.prefix}…): {why}",
            request=request,
            details={"prefix": token.prefix, "reason": why, "path": request.path[:200] if request else ""},
        )
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token.user, token


# --- Sign-in lockout ------------------------------------------------------------
# Counted per account *and* client address in the shared `limits` cache (core/limits.py): wrong
# passwords from an attacker's address slow down and lock out that address only, never the
# operator signing in from elsewhere. Failed sign-ins are also in the audit trail (auth_audit.py).

LOGIN_BLOCKED = AuditAction.AUTH_LOGIN_BLOCKED
LOCK_SCOPE = "operator"


def _wait_sentence(seconds: float) -> str:
    seconds = max(1, int(seconds + 0.999))
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{(seconds + 59) // 60} minutes"


def login_lockout_reason(*, username: str, ip_address: str | None) -> str | None:
    """One sentence if this sign-in must wait before its password is checked, else None."""
    wait = limits.signin_wait(LOCK_SCOPE, username, ip_address)
    if wait <= 0:
        return None
    return (
        f"Too many failed sign-ins for this account from your network address; try again in {_wait_sentence(wait)} "
        "or ask an admin to unlock it."
    )


def login_failed(*, username: str, ip_address: str | None) -> None:
    limits.signin_failed(LOCK_SCOPE, username, ip_address, label=username)


def login_succeeded(*, username: str, ip_address: str | None) -> None:
    limits.signin_succeeded(LOCK_SCOPE, username, ip_address)


def operator_locks(username: str) -> list[limits.Lock]:
    return limits.signin_locks(LOCK_SCOPE, username)


def operator_unlock(*, actor: User, user_id: int, request: HttpRequest | None = None) -> Any:
    """Forget every failed sign-in of an operator, from every address (Admin); audited."""
    with transaction.atomic():
        user = _operator_for_change(actor, user_id)
        locked = operator_locks(user.username)
        if not locked:
            raise Conflict(f"{user.username} is not locked out.")
        limits.signin_unlock(LOCK_SCOPE, user.username)
        audit_record(
            actor=actor,
            action=AuditAction.OPERATOR_UNLOCK,
            target_type="user",
            target_id=user.pk,
            summary=f"Unlocked {user.username} ({len(locked)} locked address{'es' if len(locked) != 1 else ''})",
            request=request,
            details={"username": user.username, "addresses": [lock.address for lock in locked]},
        )
    return user


def token_scope_refused(*, request: HttpRequest, needed: Role) -> None:
    """Audit a token used beyond its scope (the API answers 403)."""
    token = request.api_token  # type: ignore[attr-defined]
    audit_record(
        actor=token.user,
        action=AuditAction.TOKEN_REFUSED,
        target_type="api_token",
        target_id=token.pk,
        summary=f"Refused API token “{token.name}” ({token.prefix}…): {token.scope} scope, {needed.group_name} needed",
        request=request,
        details={"prefix": token.prefix, "reason": "scope", "scope": token.scope, "needed": needed.group_name},
    )
