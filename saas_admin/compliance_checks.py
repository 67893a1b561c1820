"""Compliance checks that read what saas_admin owns — operators' second factors and API tokens.

Registered with the compliance registry from SaasAdminConfig.ready(): compliance sits below
saas_admin in the layers and cannot import these models itself.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from compliance.checks.registry import Outcome, check
from core.permissions import Role, operator_role
from saas_admin.models import ApiToken


@check("mfa_enrolled")
def mfa_enrolled() -> Outcome:
    """Proves every active operator (and so every Admin) has a confirmed second factor that is not a recovery
    code: an authenticator app (TOTP) or a passkey (WebAuthn). Recovery codes alone do not count.

    Evidence: operators checked, per role, and those without a factor (Admins first)."""
    totp = set(TOTPDevice.objects.filter(confirmed=True).values_list("user_id", flat=True))
    passkeys = set(WebAuthnCredential.objects.filter(confirmed=True).values_list("user_id", flat=True))
    enrolled = totp | passkeys
    checked, missing = 0, []
    for user in User.objects.filter(is_active=True, is_staff=True).prefetch_related("groups").order_by("username"):
        role = operator_role(user)
        if role is None:
            continue
        checked += 1
        if user.pk not in enrolled:
            missing.append({"username": user.username, "role": role.group_name})
    missing.sort(key=lambda m: (m["role"] != Role.ADMIN.group_name, m["username"]))
    return Outcome.judged(
        missing,
        f"All {checked} active operators have a confirmed authenticator app or passkey.",
        "{n} active operators have no second factor: " + ", ".join(m["username"] for m in missing[:5]) + ".",
        operators=checked,
        admins_missing=sum(1 for m in missing if m["role"] == Role.ADMIN.group_name),
    )


@check("stale_access")
def stale_access() -> Outcome:
    """Proves no active operator has gone without signing in for COMPLIANCE_INACTIVE_DAYS (or never signed in
    that long after being created), and no usable API token has no expiry or has gone unused for that long.

    Evidence: the inactive operators and the flagged tokens (name, prefix, owner — never the token)."""
    days = int(settings.COMPLIANCE_INACTIVE_DAYS)
    cutoff = timezone.now() - timedelta(days=days)
    inactive = []
    for user in User.objects.filter(is_active=True, is_staff=True).filter(
        Q(last_login__lt=cutoff) | Q(last_login__isnull=True, date_joined__lt=cutoff)
    ):
        if operator_role(user) is not None:
            inactive.append(
                {"username": user.username, "last_login": user.last_login.isoformat() if user.last_login else None}
            )
    tokens = []
    usable = ApiToken.objects.filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )
    for token in usable.select_related("user"):
        if token.expires_at is None:
            tokens.append(
                {"token": token.prefix, "name": token.name, "owner": token.user.username, "problem": "no expiry"}
            )
        elif (token.last_used_at or token.created_at) < cutoff:
            tokens.append(
                {
                    "token": token.prefix,
                    "name": token.name,
                    "owner": token.user.username,
                    "problem": f"unused {days}+ days",
                }
            )
    problems = [{"operator": i["username"], "problem": f"inactive {days}+ days"} for i in inactive] + tokens
    return Outcome.judged(
        problems,
        f"No operator inactive for {days} days and no stale or never-expiring token.",
        "{n} stale accesses: "
        + "; ".join(f"{p.get('operator') or p['token']} {p['problem']}" for p in problems[:3])
        + ".",
        inactive_days=days,
        inactive=inactive,
        tokens=tokens,
    )
