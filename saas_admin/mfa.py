"""Two-factor sign-in for operators (django-otp): authenticator apps, passkeys, one-time recovery codes.

- Policy: every operator needs a second factor (MFA_REQUIRED); MFA_REQUIRED_FOR_VIEWERS=false
  relaxes it for Viewers only.
- Enforcement, server-side, in one place: `OperatorMFAMiddleware` lets a signed-in operator who has
  not passed the second factor reach only sign-in, sign-out and the two-factor pages themselves.
  Everything else of the dashboard redirects: to enrolment when they have no device yet (the first
  sign-in, the demo operator's too), else to the code page. Session-authenticated API calls are
  refused by `saas_admin.api_auth` with 401; bearer tokens are a separate credential (scoped,
  expiring) and are not affected.
- Devices: a TOTP device (QR code from the `qrcode` package, shown as inline SVG), passkeys
  (django-otp-webauthn; its JSON endpoints under /account/mfa/webauthn/), and a static device named
  "recovery" holding ten one-time codes, shown once.
- Codes are rate limited per operator and address like passwords (core/limits.py scope "mfa").
- Admins reset another operator's devices (`operator_mfa_reset`, audited); the operator enrols
  again at the next sign-in.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from io import BytesIO
from typing import Any
from urllib.parse import quote

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django_otp import devices_for_user, match_token, user_has_device
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.helpers import WebAuthnHelper as _BaseWebAuthnHelper
from django_otp_webauthn.models import WebAuthnCredential

from audit.actions import AuditAction
from audit.services import audit_record
from core import limits
from core.errors import Conflict, NotFound
from core.http import OperatorRequest, client_ip
from core.permissions import Role, is_auditor, operator_role
from saas_admin.services import _operator_for_change

RECOVERY_DEVICE = "recovery"
RECOVERY_CODES = 10
MFA_SCOPE = "mfa"


# --- policy ------------------------------------------------------------------------------------------


def mfa_required(user: Any) -> bool:
    """Whether this operator must pass a second factor (non-operators: never asked here)."""
    role = operator_role(user)
    if role is None:  # an Auditor (read-only, but they read everything an incident would need) enrols too
        return bool(settings.MFA_REQUIRED) and is_auditor(user)
    if not settings.MFA_REQUIRED:
        return False
    return role > Role.VIEWER or settings.MFA_REQUIRED_FOR_VIEWERS


def user_verified(request: HttpRequest) -> bool:
    """django-otp's OTPMiddleware gives the user `is_verified()`; an anonymous or bare user is not verified."""
    return bool(getattr(request.user, "is_verified", lambda: False)())


def mfa_satisfied(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is None or not mfa_required(user):
        return True
    return bool(getattr(user, "is_verified", lambda: False)())


def has_device(user: Any) -> bool:
    return user_has_device(user, confirmed=True)


def device_summary(user: Any) -> list[str]:
    """What a person reads on the Operators screen: "authenticator app", "2 passkeys", "8 recovery codes"."""
    found: list[str] = []
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        found.append("authenticator app")
    passkeys = WebAuthnCredential.objects.filter(user=user, confirmed=True).count()
    if passkeys:
        found.append(f"{passkeys} passkey{'s' if passkeys != 1 else ''}")
    codes = StaticToken.objects.filter(device__user=user, device__name=RECOVERY_DEVICE).count()
    if codes:
        found.append(f"{codes} recovery code{'s' if codes != 1 else ''}")
    return found


# --- enforcement ---------------------------------------------------------------------------------------

# Paths an operator who has not passed the second factor may still reach.
_OPEN_PREFIXES = ("/login/", "/logout/", "/account/mfa/", "/static/", "/healthz", "/signup/", "/api/", "/favicon.ico")


class OperatorMFAMiddleware:
    """Every dashboard page needs the second factor (API: see saas_admin.api_auth)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(_OPEN_PREFIXES)
            and not mfa_satisfied(request)
        ):
            page = "mfa_verify" if has_device(user) else "mfa_setup"
            target = f"{reverse(page)}?next={quote(request.get_full_path())}"
            if getattr(request, "htmx", False):
                response = HttpResponse(status=401)
                response["HX-Redirect"] = target
                return response
            return HttpResponseRedirect(target)
        return self.get_response(request)


# --- passkeys -------------------------------------------------------------------------------------------


class WebAuthnHelper(_BaseWebAuthnHelper):
    """Passkeys belong to BASE_DOMAIN; the origin is the dashboard's own (any port in development)."""

    def get_allowed_origins(self) -> list[str]:
        # The page's own origin (the Host header passed ALLOWED_HOSTS): a relaying phishing site's
        # origin, signed into the browser's clientDataJSON, still never matches it.
        own = f"{self.request.scheme}://{self.request.get_host()}"
        return [*(super().get_allowed_origins() or []), own]


# --- services ------------------------------------------------------------------------------------------------


def totp_pending(user: Any) -> TOTPDevice:
    """The operator's unconfirmed authenticator-app device (created once, reused until confirmed)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def qr_svg(text: str) -> str:
    """An inline SVG QR code (no image files, nothing leaves the server)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    out = BytesIO()
    image.save(out)
    return out.getvalue().decode()


def code_wait(request: OperatorRequest) -> float:
    return limits.signin_wait(MFA_SCOPE, request.user.get_username(), client_ip(request))


def _refused(request: OperatorRequest) -> None:
    limits.signin_failed(MFA_SCOPE, request.user.get_username(), client_ip(request), label=request.user.get_username())
    audit_record(
        actor=request.user,
        action=AuditAction.AUTH_MFA_FAILED,
        target_type="user",
        target_id=request.user.pk,
        summary=f"Two-factor code refused for {request.user.get_username()}",
        request=request,
    )


def _passed(request: OperatorRequest, device: Any) -> None:
    otp_login(request, device)
    limits.signin_succeeded(MFA_SCOPE, request.user.get_username(), client_ip(request))
    audit_record(
        actor=request.user,
        action=AuditAction.AUTH_MFA_VERIFIED,
        target_type="user",
        target_id=request.user.pk,
        summary=f"{request.user.get_username()} passed two-factor sign-in ({device_kind(device)})",
        request=request,
    )


def device_kind(device: Any) -> str:
    if isinstance(device, StaticDevice):
        return "recovery code"
    if isinstance(device, WebAuthnCredential):
        return "passkey"
    return "authenticator app"


def totp_confirm(request: OperatorRequest, code: str) -> bool:
    """Enrolment: the first code from the app confirms the device and completes this sign-in."""
    device = totp_pending(request.user)
    if not device.verify_token(code.strip().replace(" ", "")):
        _refused(request)
        return False
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit_record(
            actor=request.user,
            action=AuditAction.MFA_DEVICE_ADD,
            target_type="user",
            target_id=request.user.pk,
            summary=f"{request.user.get_username()} added an authenticator app",
            request=request,
        )
    _passed(request, device)
    return True


def code_verify(request: OperatorRequest, code: str) -> bool:
    """Sign-in: an authenticator-app code or an unused recovery code (which is then spent)."""
    device = match_token(request.user, code.strip().replace(" ", "").lower())
    if device is None:
        _refused(request)
        return False
    _passed(request, device)
    return True


def recovery_codes_generate(*, user: Any, request: HttpRequest | None = None) -> list[str]:
    """Ten new one-time codes, replacing any old ones; shown once, stored as django-otp static tokens."""
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(user=user, name=RECOVERY_DEVICE, defaults={"confirmed": True})
        device.token_set.all().delete()
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
        audit_record(
            actor=user,
            action=AuditAction.MFA_RECOVERY_CODES,
            target_type="user",
            target_id=user.pk,
            summary=f"{user.get_username()} generated {RECOVERY_CODES} recovery codes",
            request=request,
        )
    return codes


def device_remove(*, user: Any, kind: str, device_id: int, request: HttpRequest | None = None) -> None:
    """An operator removes one of their own devices (not the last one while two-factor is required)."""
    model = {"totp": TOTPDevice, "passkey": WebAuthnCredential}.get(kind)
    device = model.objects.filter(user=user, pk=device_id).first() if model else None
    if device is None:
        raise NotFound("No such device.")
    others = [d for d in devices_for_user(user, confirmed=True) if not isinstance(d, StaticDevice) and d != device]
    if mfa_required(user) and not others:
        raise Conflict("This is your only authenticator; add another one before removing it.")
    with transaction.atomic():
        device.delete()
        audit_record(
            actor=user,
            action=AuditAction.MFA_DEVICE_REMOVE,
            target_type="user",
            target_id=user.pk,
            summary=f"{user.get_username()} removed a {device_kind(device)}",
            request=request,
        )


def operator_mfa_reset(*, actor: User, user_id: int, request: HttpRequest | None = None) -> Any:
    """Admin: remove every two-factor device of another operator; they enrol again at the next sign-in."""
    with transaction.atomic():
        user = _operator_for_change(actor, user_id)
        removed = [device_kind(d) for d in devices_for_user(user, confirmed=None)]
        for model in (TOTPDevice, StaticDevice, WebAuthnCredential):
            model.objects.filter(user=user).delete()
        audit_record(
            actor=actor,
            action=AuditAction.OPERATOR_MFA_RESET,
            target_type="user",
            target_id=user.pk,
            summary=f"Reset the two-factor devices of {user.username} ({len(removed)} removed)",
            request=request,
            details={"username": user.username, "removed": removed},
        )
    return user
