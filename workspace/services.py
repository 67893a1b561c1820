"""Writes in a tenant's workspace. Callers are inside tenant_context (the router picks the alias)."""

from __future__ import annotations

from decimal import Decimal

from django.apps import apps
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from core.personal_data import subject_ref
from core.tenancy import current_alias, current_tenant_id
from workspace import quotas
from workspace.models import Account, Member

SET_PASSWORD_SALT = "workspace.member.set-password"


def _alias() -> str:
    alias = current_alias()
    if alias is None:
        raise RuntimeError("Workspace writes need an open tenant_context.")
    return alias


def member_create(*, name: str, email: str, password: str | None = None, is_admin: bool = False) -> Member:
    email = (email or "").strip().lower()
    name = (name or "").strip()
    if not name:
        raise ValidationError("Please give the member a name.")
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError(f"“{email}” is not a valid email address.")
    quotas.check_storage()
    quotas.check_members()
    member = Member(name=name, email=email, is_admin=is_admin)
    member.set_password(password)
    try:
        with transaction.atomic(using=_alias()):
            member.save(using=_alias())
            _member_joined(member)
    except IntegrityError:
        raise ValidationError(f"A member with the email {email} already exists.")
    return member


def _member_joined(member: Member) -> None:
    """The member's history starts in the tenant's log; name and email are encrypted with the
    subject's own key (events.crypto), so erasing the person destroys every copy at once."""
    if not apps.is_installed("events.tenantlog"):  # the django-tenants baseline in bench/ has no log
        return
    # At call time: the tenant log is optional (see above).
    from events.crypto import Personal
    from events.tenantlog.store import current_tenant_store

    subject = subject_ref(member.tenant_id, member.email)
    current_tenant_store().append(
        "member",
        str(member.pk),
        "member.joined",
        {"member": Personal(subject, {"name": member.name, "email": member.email}), "is_admin": member.is_admin},
        metadata={"member_id": member.pk},
        expected_version=0,
    )


def member_authenticate(*, email: str, password: str) -> Member | None:
    member = Member.objects.using(_alias()).filter(email=(email or "").strip().lower(), is_active=True).first()
    if member is None:
        Member().set_password(password)  # same work either way: no timing hint that the email exists
        return None
    return member if member.check_password(password) else None


class LinkPurpose:
    """What an emailed set-password link is for; each has its own lifetime (settings)."""

    INVITE = "invite"  # an admin's invitation, or the owner's first link after provisioning
    RESET = "reset"  # "forgot password"

    @staticmethod
    def max_age(purpose: str) -> int:
        if purpose == LinkPurpose.RESET:
            return int(settings.WORKSPACE_RESET_MAX_AGE_SECONDS)
        return int(settings.WORKSPACE_INVITE_MAX_AGE_SECONDS)


def member_set_password_token(member: Member, purpose: str = LinkPurpose.INVITE) -> str:
    """A signed link token: bound to the tenant (checked against the host's tenant), the member, and the
    current password hash — so it works once (setting a password changes the hash), and a resent
    invitation (a fresh unusable hash) kills every earlier link."""
    return signing.dumps(
        {"t": str(member.tenant_id), "m": member.pk, "h": member.password[-16:], "p": purpose}, salt=SET_PASSWORD_SALT
    )


def member_for_set_password_token(token: str) -> tuple[Member, str] | None:
    """(member, purpose) when the token is valid on this tenant's host right now, else None."""
    longest = max(LinkPurpose.max_age(LinkPurpose.INVITE), LinkPurpose.max_age(LinkPurpose.RESET))
    try:
        data = signing.loads(token[:1000], salt=SET_PASSWORD_SALT, max_age=longest)
        purpose = data.get("p", LinkPurpose.INVITE) if isinstance(data, dict) else ""
        if purpose not in (LinkPurpose.INVITE, LinkPurpose.RESET):
            return None
        signing.loads(token, salt=SET_PASSWORD_SALT, max_age=LinkPurpose.max_age(purpose))
    except (signing.BadSignature, ValueError):
        return None
    if data.get("t") != str(current_tenant_id()) or not isinstance(data.get("m"), int):
        return None
    member = Member.objects.using(_alias()).filter(pk=data["m"], is_active=True).first()
    if member is None or member.password[-16:] != data.get("h"):
        return None
    return member, purpose


def account_open(*, name: str, currency: str = "EUR", balance: Decimal | str = "0.00") -> Account:
    name = (name or "").strip()
    if not name:
        raise ValidationError("Please give the account a name.")
    currency = (currency or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValidationError("The currency must be a three-letter code such as EUR.")
    quotas.check_storage()
    account = Account(name=name, currency=currency, balance=Decimal(balance))
    account.save(using=_alias())
    return account
