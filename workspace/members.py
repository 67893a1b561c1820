"""Workspace members' accounts: sign-in with lockout, invitations, roles, removal, password reset.

Everything here runs on a tenant's host, inside its tenant_context on the data-plane role, which
cannot write the control plane's audit trail: the tenant's record of who did what is its **own
event log** (events.tenantlog, aggregate `workspace.member`, in its placement). Email addresses and
client addresses in those events are personal data, encrypted per subject (events.crypto).

- Sign-in lockout like operators' (core/limits.py): failures counted per account *and* client
  address with a progressive delay, in the shared `tenant_limits` cache (the one control-plane
  table the data-plane role may write), scoped by tenant: the same email in two workspaces is two
  accounts. Each lockout is an event `member.signin_locked` in the tenant's log.
- Links (invitation, the owner's first link, "forgot password") are signed tokens bound to the
  tenant, the member and the current password hash (workspace.services.member_set_password_token):
  single-use, expiring, and worthless on another tenant's host.
- Admin actions (invite, resend, revoke, change a role, remove) take the acting member and refuse
  non-admins with Forbidden; the last admin who can sign in cannot be demoted or removed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from core import limits
from core.errors import ApplicationError, Conflict, Forbidden, InvalidInput, NotFound
from core.tenancy import current_alias, current_tenant_id
from events.crypto import Personal
from events.tenantlog.store import current_tenant_store
from workspace import services
from workspace.models import Member, MemberSession
from workspace.services import LinkPurpose
from workspace.sessions import SESSION_KEY, SessionStore

logger = logging.getLogger(__name__)

AGGREGATE = "workspace.member"
SIGNIN_AGGREGATE = "workspace.signin"
MAX_EMAIL = 254


@dataclass(frozen=True)
class Links:
    """How emails name the workspace and link to its set-password page (on the tenant's own host)."""

    workspace: str
    url: Callable[[str], str]  # token → absolute URL


class MailNotSent(ApplicationError):
    """The mail server refused or could not be reached; the change that needed the email is undone."""

    status = 503


class SignInThrottled(ApplicationError):
    """Too many failed sign-ins for this account from this address, or too many emails asked for."""

    status = 429


def _alias() -> str:
    alias = current_alias()
    if alias is None:
        raise RuntimeError("Workspace members need an open tenant_context.")
    return alias


def _norm_email(email: str) -> str:
    return (email or "").strip().lower()


def _subject(email: str) -> str:
    return "member-email:" + hashlib.sha256(_norm_email(email).encode()).hexdigest()[:32]


def _record(event_type: str, aggregate_id: str, data: dict[str, Any], actor: Member | None) -> None:
    """One event in the tenant's own log (same transaction as the change)."""
    metadata = {"member_id": actor.pk} if actor is not None else {}
    current_tenant_store().append(AGGREGATE, aggregate_id, event_type, data, metadata=metadata)


def _wait_sentence(seconds: float) -> str:
    seconds = max(1, int(seconds + 0.999))
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{(seconds + 59) // 60} minutes"


# --- sign-in with lockout -----------------------------------------------------------------------


def _lock_scope() -> str:
    return f"member:{current_tenant_id()}"


def member_sign_in(*, email: str, password: str, address: str | None) -> Member | None:
    """The member when the password is right; None when not. Raises SignInThrottled (one sentence)
    while this account and address must wait, before the password is even checked."""
    account = _norm_email(email)[:MAX_EMAIL]
    scope = _lock_scope()
    wait = limits.signin_wait(scope, account, address, cache=limits.TENANT_ALIAS)
    if wait > 0:
        raise SignInThrottled(
            f"Too many failed sign-ins for this account from your network address; try again in {_wait_sentence(wait)}."
        )
    member = services.member_authenticate(email=account, password=password)
    if member is None:
        failures, delay = limits.signin_failed(scope, account, address, cache=limits.TENANT_ALIAS)
        if failures == limits.policy().limit:
            with transaction.atomic(using=_alias()):
                current_tenant_store().append(
                    SIGNIN_AGGREGATE,
                    _subject(account).split(":", 1)[1],
                    "member.signin_locked",
                    {
                        "email": Personal(_subject(account), account),
                        "address": Personal(_subject(account), address or "unknown"),
                        "failures": failures,
                        "locked_seconds": delay,
                    },
                )
        return None
    limits.signin_succeeded(scope, account, address, cache=limits.TENANT_ALIAS)
    return member


def member_locks(member: Member) -> list[limits.Lock]:
    """Addresses locked out of this member's account right now (shown to workspace admins)."""
    return limits.signin_locks(_lock_scope(), member.email, cache=limits.TENANT_ALIAS)


def member_unlock(*, actor: Member, member_id: Any) -> Member:
    """Forget every failed sign-in of a member from every address (Admin), like operators' Unlock."""
    _require_admin(actor)
    member = member_get(member_id)
    if not member_locks(member):
        raise Conflict(f"{member.name} is not locked out.")
    with transaction.atomic(using=_alias()):
        limits.signin_unlock(_lock_scope(), member.email, cache=limits.TENANT_ALIAS)
        _record("member.unlocked", str(member.pk), {}, actor)
    return member


# --- admin actions ------------------------------------------------------------------------------


def _require_admin(actor: Member) -> None:
    if not actor.is_admin or not actor.is_active:
        raise Forbidden("Only workspace admins can do that.")


def member_get(pk: Any) -> Member:
    """A member of this workspace (RLS: another tenant's id finds nothing), or NotFound."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise NotFound("No such member in this workspace.") from None
    if not 0 < pk < 2**63:
        raise NotFound("No such member in this workspace.")
    member = Member.objects.using(_alias()).filter(pk=pk).first()
    if member is None:
        raise NotFound("No such member in this workspace.")
    return member


def _send_link(member: Member, *, purpose: str, links: Links, inviter: Member | None = None) -> None:
    link = links.url(services.member_set_password_token(member, purpose))
    hours = LinkPurpose.max_age(purpose) // 3600
    context = {"member": member, "link": link, "hours": hours, "inviter": inviter, "workspace": links.workspace}
    template, subject = (
        ("emails/workspace_reset.txt", f"Reset your password for {links.workspace}")
        if purpose == LinkPurpose.RESET
        else ("emails/workspace_invite.txt", f"You are invited to the workspace {links.workspace}")
    )
    try:
        send_mail(
            subject=subject,
            message=render_to_string(template, context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[member.email],
        )
    except OSError as exc:  # smtplib's errors are OSErrors too; raising undoes the enclosing transaction
        logger.warning("workspace email to member %s not sent: %s", member.pk, exc)
        raise MailNotSent("The email could not be sent; nothing was changed. Please try again in a moment.") from None


def _invite_rate_limited() -> bool:
    limit, window = limits.parse_rate(settings.WORKSPACE_INVITE_RATE_LIMIT)
    return limits.rate_limit_hit(
        "workspace-invite", str(current_tenant_id()), limit=limit, window=window, cache=limits.TENANT_ALIAS
    )


def member_invite(*, actor: Member, name: str, email: str, is_admin: bool = False, links: Links) -> Member:
    """Create a member with no usable password and email them a set-password link (Admin)."""
    _require_admin(actor)
    if len(_norm_email(email)) > MAX_EMAIL or len((name or "").strip()) > 200:
        raise InvalidInput("The name or email address is too long.")
    if _invite_rate_limited():
        raise SignInThrottled("Too many invitations from this workspace; please try again in an hour.")
    with transaction.atomic(using=_alias()):
        try:
            member = services.member_create(name=name, email=email, password=None, is_admin=is_admin)
        except ValidationError as exc:
            raise InvalidInput(exc.messages[0]) from None
        member.invited_at = timezone.now()
        member.save(using=_alias(), update_fields=["invited_at"])
        _record(
            "member.invited",
            str(member.pk),
            {"email": Personal(_subject(member.email), member.email), "is_admin": member.is_admin},
            actor,
        )
        _send_link(member, purpose=LinkPurpose.INVITE, links=links, inviter=actor)
    return member


def _pending(member: Member) -> Member:
    if not member.invitation_pending:
        raise Conflict(f"{member.name} has already accepted the invitation.")
    return member


def member_invite_resend(*, actor: Member, member_id: Any, links: Links) -> Member:
    """A new invitation link; every earlier link of this member stops working (Admin)."""
    _require_admin(actor)
    if _invite_rate_limited():
        raise SignInThrottled("Too many invitations from this workspace; please try again in an hour.")
    with transaction.atomic(using=_alias()):
        member = _pending(member_get(member_id))
        member.set_password(None)  # a fresh unusable hash: old links carried the previous one
        member.invited_at = timezone.now()
        member.save(using=_alias(), update_fields=["password", "invited_at"])
        _record("member.invitation_resent", str(member.pk), {}, actor)
        _send_link(member, purpose=LinkPurpose.INVITE, links=links, inviter=actor)
    return member


def member_invite_revoke(*, actor: Member, member_id: Any) -> Member:
    """Withdraw a pending invitation: the invited member row goes, and with it every link (Admin)."""
    _require_admin(actor)
    with transaction.atomic(using=_alias()):
        member = _pending(member_get(member_id))
        Member.objects.using(_alias()).filter(pk=member.pk).delete()
        _record("member.invitation_revoked", str(member.pk), {}, actor)
    return member


def _other_admins_who_can_sign_in(member: Member) -> int:
    return (
        Member.objects.using(_alias())
        .filter(is_admin=True, is_active=True)
        .exclude(pk=member.pk)
        .exclude(password__startswith="!")
        .exclude(password="")
        .count()
    )


def _lock_admins() -> None:
    """Lock every admin row, so two admins demoting or removing each other at once cannot both win."""
    list(Member.objects.using(_alias()).select_for_update().filter(is_admin=True).values_list("pk", flat=True))


def member_set_role(*, actor: Member, member_id: Any, is_admin: bool) -> Member:
    """Make a member an admin or a plain member (Admin); the last admin stays one."""
    _require_admin(actor)
    with transaction.atomic(using=_alias()):
        member = member_get(member_id)
        _lock_admins()
        if member.is_admin == is_admin:
            raise Conflict(f"{member.name} is already {'an admin' if is_admin else 'a member'}.")
        if not is_admin and _other_admins_who_can_sign_in(member) == 0:
            raise Conflict(f"{member.name} is the last admin; make someone else an admin first.")
        member.is_admin = is_admin
        member.save(using=_alias(), update_fields=["is_admin"])
        _record("member.role_changed", str(member.pk), {"is_admin": is_admin}, actor)
    return member


def member_sessions_end(member_id: int) -> int:
    """End every session of this member on this tenant's host (RLS keeps it to this tenant).

    Sessions saved before MemberSession.member_id existed (workspace migration 0003) have it NULL;
    a data migration cannot fill it (FORCEd RLS shows a migration no tenant's rows, and a dedicated
    database has no list of its tenants), so the live ones are decoded here: this member's are ended
    with the rest, and every other decodable one gets its member id, so each is decoded only once."""
    alias = _alias()
    sessions = MemberSession.objects.using(alias)
    legacy: list[str] = []
    for key, data in sessions.filter(member_id__isnull=True, expire_date__gt=timezone.now()).values_list(
        "session_key", "session_data"
    ):
        owner = _session_member(data)
        if owner == member_id:
            legacy.append(key)
        elif owner is not None:
            sessions.filter(session_key=key, member_id__isnull=True).update(member_id=owner)
    deleted, _ = sessions.filter(member_id=member_id).delete()
    if legacy:
        more, _ = sessions.filter(session_key__in=legacy).delete()
        deleted += more
    return deleted


def _session_member(session_data: str) -> int | None:
    """The member id a stored session names, or None (anonymous, or undecodable: a tampered or
    differently-signed row decodes to {} in Django)."""
    data = SessionStore().decode(session_data)
    member = (data.get(SESSION_KEY) or {}).get("member")
    return member if isinstance(member, int) else None


def member_remove(*, actor: Member, member_id: Any) -> Member:
    """Remove a member and end their sessions at once (Admin); not yourself, not the last admin."""
    _require_admin(actor)
    with transaction.atomic(using=_alias()):
        member = member_get(member_id)
        if member.pk == actor.pk:
            raise Conflict("You cannot remove yourself; ask another admin.")
        _lock_admins()
        if member.is_admin and _other_admins_who_can_sign_in(member) == 0:
            raise Conflict(f"{member.name} is the last admin; make someone else an admin first.")
        sessions = member_sessions_end(member.pk)
        Member.objects.using(_alias()).filter(pk=member.pk).delete()
        _record("member.removed", str(member.pk), {"sessions_ended": sessions}, actor)
    return member


# --- "forgot password" and following a link ------------------------------------------------------


def password_reset_request(*, email: str, address: str | None, links: Links) -> None:
    """Email a reset link if `email` is an active member here. The caller shows the same sentence
    either way (no hint whether the address belongs to a member); limited per address and account."""
    email = _norm_email(email)[:MAX_EMAIL]
    limit, window = limits.parse_rate(settings.WORKSPACE_RESET_RATE_LIMIT)
    by_address = limits.rate_limit_hit(
        "workspace-reset-ip", f"{current_tenant_id()}:{address}", limit=limit, window=window, cache=limits.TENANT_ALIAS
    )
    by_account = limits.rate_limit_hit(
        "workspace-reset", f"{current_tenant_id()}:{email}", limit=limit, window=window, cache=limits.TENANT_ALIAS
    )
    if by_address or by_account:
        raise SignInThrottled("Too many password reset requests; please try again in an hour.")
    member = Member.objects.using(_alias()).filter(email=email, is_active=True).first()
    if member is None:
        return
    with transaction.atomic(using=_alias()):
        _record("member.password_reset_requested", str(member.pk), {}, None)
        _send_link(member, purpose=LinkPurpose.RESET, links=links)


def member_for_link(token: str) -> tuple[Member, str] | None:
    return services.member_for_set_password_token(token)


def member_password_set(*, member: Member, purpose: str, password: str) -> Member:
    """Follow a link: set the password (the link dies with the old hash) and end every other session."""
    with transaction.atomic(using=_alias()):
        member.set_password(password)
        member.save(using=_alias(), update_fields=["password"])
        ended = member_sessions_end(member.pk)
        event = "member.invitation_accepted" if purpose == LinkPurpose.INVITE else "member.password_reset"
        _record(event, str(member.pk), {"sessions_ended": ended}, member)
    return member
