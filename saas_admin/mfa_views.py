"""Two-factor pages of an operator (saas_admin/mfa.py): enrolment, the code page, their devices.

Reachable while the second factor is still missing (the middleware lets /account/mfa/ through), so
each view checks itself that an operator is signed in, and the devices page that the factor passed.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from core.errors import ApplicationError
from core.http import OperatorRequest
from core.permissions import is_auditor, operator_role
from saas_admin import mfa


def _next(request: OperatorRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return "/"
    return target


def _operator_or_login(request: OperatorRequest) -> HttpResponse | None:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if operator_role(request.user) is None and not is_auditor(request.user):
        return render(request, "403.html", status=403)
    return None


def _wait_error(request: OperatorRequest) -> str:
    wait = mfa.code_wait(request)
    return f"Too many wrong codes; try again in {int(wait) + 1} seconds." if wait > 0 else ""


def _codes_page(request: OperatorRequest, codes: list[str], next_url: str) -> HttpResponse:
    response = render(request, "mfa/recovery_codes.html", {"codes": codes, "next": next_url})
    add_never_cache_headers(response)  # shown once: never stored by browsers or proxies
    return response


@require_http_methods(["GET", "POST"])
def mfa_setup(request: OperatorRequest) -> HttpResponse:
    """Enrolment: scan the QR code (or register a passkey), confirm with a first code, get recovery codes."""
    refused = _operator_or_login(request)
    if refused is not None:
        return refused
    if mfa.has_device(request.user) and not mfa.user_verified(request):
        return redirect(f"/account/mfa/verify/?next={_next(request)}")
    error = ""
    if request.method == "POST":
        error = _wait_error(request)
        if not error and mfa.totp_confirm(request, request.POST.get("code", "")[:20]):
            codes = mfa.recovery_codes_generate(user=request.user, request=request)
            return _codes_page(request, codes, _next(request))
        error = error or "That code does not match; check the time on your phone and try the newest code."
    device = mfa.totp_pending(request.user)
    context = {
        "qr": mfa.qr_svg(device.config_url),
        "secret": device.key and _base32(device),
        "next": _next(request),
        "error": error,
        "required": mfa.mfa_required(request.user),
    }
    response = render(request, "mfa/setup.html", context, status=400 if error else 200)
    add_never_cache_headers(response)
    return response


def _base32(device: TOTPDevice) -> str:
    from base64 import b32encode  # only here: the secret shown for typing it in by hand

    return b32encode(device.bin_key).decode().rstrip("=")


@require_http_methods(["GET", "POST"])
def mfa_verify(request: OperatorRequest) -> HttpResponse:
    """After the password: an authenticator-app code, a recovery code, or a passkey."""
    refused = _operator_or_login(request)
    if refused is not None:
        return refused
    if not mfa.has_device(request.user):
        return redirect(f"/account/mfa/setup/?next={_next(request)}")
    if mfa.user_verified(request):
        return redirect(_next(request))
    error = ""
    if request.method == "POST":
        error = _wait_error(request)
        if not error and mfa.code_verify(request, request.POST.get("code", "")[:40]):
            return redirect(_next(request))
        error = error or "That code does not match an authenticator or an unused recovery code."
    has_passkey = WebAuthnCredential.objects.filter(user=request.user, confirmed=True).exists()
    context = {"next": _next(request), "error": error, "has_passkey": has_passkey}
    return render(request, "mfa/verify.html", context, status=400 if error else 200)


def _verified_operator(request: OperatorRequest) -> HttpResponse | None:
    refused = _operator_or_login(request)
    if refused is not None:
        return refused
    if mfa.mfa_required(request.user) and not mfa.user_verified(request):
        return redirect(f"/account/mfa/verify/?next={request.path}")
    return None


def mfa_devices(request: OperatorRequest) -> HttpResponse:
    """The operator's own devices: add a passkey or an app, new recovery codes, remove one."""
    refused = _verified_operator(request)
    if refused is not None:
        return refused
    user = request.user
    context: dict[str, Any] = {
        "totp": TOTPDevice.objects.filter(user=user, confirmed=True),
        "passkeys": WebAuthnCredential.objects.filter(user=user, confirmed=True),
        "summary": mfa.device_summary(user),
        "required": mfa.mfa_required(user),
    }
    return render(request, "mfa/devices.html", context)


@require_POST
def mfa_recovery_codes(request: OperatorRequest) -> HttpResponse:
    refused = _verified_operator(request)
    if refused is not None:
        return refused
    return _codes_page(request, mfa.recovery_codes_generate(user=request.user, request=request), "/account/mfa/")


@require_POST
def mfa_device_remove(request: OperatorRequest, kind: str, device_id: int) -> HttpResponse:
    refused = _verified_operator(request)
    if refused is not None:
        return refused
    try:
        mfa.device_remove(user=request.user, kind=kind, device_id=device_id, request=request)
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The device is removed.")
    return redirect("mfa_devices")
