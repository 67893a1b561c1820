"""Operator two-factor sign-in: enrolment on first sign-in, codes, recovery codes, enforcement, reset."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEntry

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password-1"


def password_only(user) -> Client:
    client = Client()
    assert client.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    return client


def code_for(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def test_the_first_sign_in_without_a_device_goes_straight_to_enrolment(operator):
    client = password_only(operator)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/account/mfa/setup/")
    page = client.get(response["Location"])
    assert page.status_code == 200 and b"<svg" in page.content  # the QR code, inline
    assert b"passkey-register-button" in page.content


def test_enrolling_an_app_signs_in_and_shows_recovery_codes_once(operator):
    client = password_only(operator)
    client.get("/account/mfa/setup/")
    device = TOTPDevice.objects.get(user=operator, confirmed=False)
    response = client.post("/account/mfa/setup/", {"code": code_for(device), "next": "/tenants/"})
    assert response.status_code == 200 and b"recovery-codes" in response.content
    assert StaticToken.objects.filter(device__user=operator).count() == 10
    assert response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"]
    assert client.get("/").status_code == 200
    assert AuditEntry.objects.filter(action="mfa.device_add", actor=operator).exists()


def test_a_wrong_enrolment_code_is_refused(operator):
    client = password_only(operator)
    client.get("/account/mfa/setup/")
    response = client.post("/account/mfa/setup/", {"code": "000000"})
    assert response.status_code == 400 and b"does not match" in response.content
    assert client.get("/").status_code == 302


def test_an_enrolled_operator_passes_with_a_code_or_a_one_time_recovery_code(operator):
    device = TOTPDevice.objects.create(user=operator, name="app", confirmed=True)
    client = password_only(operator)
    assert client.get("/")["Location"].startswith("/account/mfa/verify/")
    assert client.post("/account/mfa/verify/", {"code": "123 456x"}).status_code == 400
    assert client.post("/account/mfa/verify/", {"code": code_for(device), "next": "/"}).status_code == 302
    assert client.get("/").status_code == 200

    from saas_admin.mfa import recovery_codes_generate

    codes = recovery_codes_generate(user=operator)
    again = password_only(operator)
    assert again.post("/account/mfa/verify/", {"code": codes[0]}).status_code == 302
    third = password_only(operator)
    assert third.post("/account/mfa/verify/", {"code": codes[0]}).status_code == 400  # spent


def test_wrong_codes_are_rate_limited_like_passwords(operator, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    device = TOTPDevice.objects.create(user=operator, name="app", confirmed=True)
    client = password_only(operator)
    client.post("/account/mfa/verify/", {"code": "000000"})
    client.post("/account/mfa/verify/", {"code": "000001"})
    response = client.post("/account/mfa/verify/", {"code": code_for(device)})
    assert response.status_code == 400 and b"Too many wrong codes" in response.content


def _dashboard_paths() -> list[str]:
    """A concrete path for every operator-dashboard URL (ids filled with 1 or a uuid)."""
    paths: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            route = str(p.pattern)
            if isinstance(p, URLResolver):
                if route.startswith(("api/", "signup/", "account/mfa/")):
                    continue
                walk(p.url_patterns, prefix + route)
            elif isinstance(p, URLPattern):
                full = prefix + route
                full = (
                    full.replace("<int:", "<")
                    .replace("<uuid:", "<uuid")
                    .replace("<str:", "<")
                    .replace("<slug:", "<")
                    .replace("<path:", "<")
                )
                import re

                full = re.sub(r"<uuid\w+>", "00000000-0000-0000-0000-000000000001", full)
                full = re.sub(r"<\w+>", "1", full)
                if full.startswith(("login/", "logout/", "healthz", "account/mfa/")) or "^" in full:
                    continue
                paths.append("/" + full)

    walk(get_resolver().url_patterns, "")
    return paths


def test_every_dashboard_view_needs_the_second_factor(operator, client_for):
    client = client_for(operator, mfa=False)
    paths = _dashboard_paths()
    assert len(paths) > 20
    for path in paths:
        for method in (client.get, client.post):
            response = method(path)
            assert response.status_code == 302 and "/account/mfa/" in response["Location"], (path, response)


def test_session_api_calls_need_the_second_factor_but_tokens_do_not(operator, client_for, api_token_for):
    response = client_for(operator, mfa=False).get("/api/me")
    assert response.status_code == 401 and "two-factor" in response.json()["detail"]
    assert client_for(operator).get("/api/me").status_code == 200
    token = api_token_for(operator)
    assert Client(headers={"Authorization": f"Bearer {token}"}).get("/api/me").status_code == 200


def test_a_setting_relaxes_two_factor_for_viewers_only(viewer, operator, client_for, settings):
    settings.MFA_REQUIRED_FOR_VIEWERS = False
    assert client_for(viewer, mfa=False).get("/").status_code == 200
    assert client_for(operator, mfa=False).get("/").status_code == 302


def test_an_admin_resets_another_operators_devices_and_it_is_audited(platform_admin, operator, client_for):
    TOTPDevice.objects.create(user=operator, name="app", confirmed=True)
    response = client_for(platform_admin).post(f"/operators/{operator.pk}/reset-mfa/")
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=operator).exists()
    entry = AuditEntry.objects.get(action="operator.mfa_reset")
    assert entry.actor == platform_admin and entry.details["username"] == operator.username
    assert password_only(operator).get("/")["Location"].startswith("/account/mfa/setup/")


def test_only_admins_reset_devices(operator, viewer, client_for):
    assert client_for(operator).post(f"/operators/{viewer.pk}/reset-mfa/").status_code == 403
    assert client_for(viewer).post(f"/operators/{operator.pk}/reset-mfa/").status_code == 403


def test_the_mfa_pages_refuse_anonymous_visitors_and_non_operators(outsider, client_for):
    assert Client().get("/account/mfa/setup/").status_code == 302
    assert client_for(outsider).get("/account/mfa/setup/").status_code == 403
    assert client_for(outsider).get("/account/mfa/").status_code == 403


def test_the_devices_page_lists_the_operators_factors(operator, client_for):
    page = client_for(operator).get("/account/mfa/").content.decode()
    assert "authenticator app" in page and "Register a passkey" in page


def test_the_passkey_registration_endpoint_answers_options_for_an_operator(operator, client_for):
    response = client_for(operator).post("/account/mfa/webauthn/registration/begin/")
    assert response.status_code == 200 and response.json()["rp"]["id"] == "localhost"
