"""Writes in a tenant's workspace. Callers are inside tenant_context (the router picks the alias)."""

from __future__ import annotations

from decimal import Decimal

from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from core.tenancy import current_alias, current_tenant_id
from workspace import quotas
from workspace.models import Account, Member

SET_PASSWORD_SALT = "workspace.member.set-password"
SET_PASSWORD_MAX_AGE = 3 * 24 * 3600


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
    except IntegrityError:
        raise ValidationError(f"A member with the email {email} already exists.")
    return member


def member_authenticate(*, email: str, password: str) -> Member | None:
    member = Member.objects.using(_alias()).filter(email=(email or "").strip().lower(), is_active=True).first()
    if member is None:
        Member().set_password(password)  # same work either way: no timing hint that the email exists
        return None
    return member if member.check_password(password) else None


def member_set_password_token(member: Member) -> str:
    # The current hash is part of the token, so the link stops working once used.
    return signing.dumps(
        {"t": str(member.tenant_id), "m": member.pk, "h": member.password[-16:]}, salt=SET_PASSWORD_SALT
    )


def member_for_set_password_token(token: str) -> Member | None:
    try:
        data = signing.loads(token, salt=SET_PASSWORD_SALT, max_age=SET_PASSWORD_MAX_AGE)
    except signing.BadSignature:
        return None
    if data.get("t") != str(current_tenant_id()):
        return None
    member = Member.objects.using(_alias()).filter(pk=data.get("m"), is_active=True).first()
    if member is None or member.password[-16:] != data.get("h"):
        return None
    return member


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
