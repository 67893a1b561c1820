"""Real-browser tests: Playwright driving Debian's Chromium against a live server.

Fixtures (browser, page, screenshots on failure) are in tests/support/browser.py: skipped when the
`chromium` binary or the playwright package is missing, except under CI, where `.ci/run` installs
Chromium. The operator screens driven with a real Celery worker are in test_browser_operations.py.

- operator sign-in with two-factor enrolment (the first sign-in goes straight to enrolment);
- workspace invitation → set password → sign in, on a tenant host (`<slug>.localhost`, which
  Chromium resolves to loopback) served as the real data-plane role.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail

from tests.support.browser import screenshot_on_failure

pytestmark = [pytest.mark.browser, pytest.mark.django_db(databases="__all__", transaction=True)]


def test_an_operator_signs_in_and_enrols_an_authenticator_app(page, live_server, settings):
    from django_otp.oath import totp
    from django_otp.plugins.otp_static.models import StaticToken
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from core.permissions import Role
    from tests.factories import PASSWORD, OperatorFactory

    settings.MFA_REQUIRED = True
    operator = OperatorFactory(username="browser_op", role=Role.OPERATOR)
    with screenshot_on_failure(page, "operator_mfa_enrolment"):
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", operator.username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/account/mfa/setup/"))  # no device yet: straight to enrolment
        assert page.locator(".qr svg").count() == 1
        secret = page.inner_text("#totp-secret").strip()
        assert secret
        device = TOTPDevice.objects.get(user=operator, confirmed=False)
        code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
        page.fill("#code", code)
        page.click("button[type=submit]:has-text('Confirm and continue')")
        page.wait_for_selector("#recovery-codes li")
        assert page.locator("#recovery-codes li").count() == 10
        page.click("text=I saved them, continue")
        page.wait_for_url(lambda url: "/account/mfa/" not in url and "/login/" not in url)
        assert page.locator("text=browser_op").count() >= 1  # the top bar names the signed-in operator
    assert TOTPDevice.objects.filter(user=operator, confirmed=True).count() == 1
    assert StaticToken.objects.filter(device__user=operator).count() == 10


def test_an_invited_member_sets_a_password_and_signs_in(page, live_server, make_tenant):
    from tests.support.tenancy import MEMBER_PASSWORD

    tenant = make_tenant("shared")
    port = live_server.url.rsplit(":", 1)[1]
    origin = f"http://{tenant.slug}.localhost:{port}"
    mail.outbox = []
    with screenshot_on_failure(page, "workspace_invitation"):
        page.goto(f"{origin}/login/")
        page.fill("input[name=email]", f"owner@{tenant.slug}.test")
        page.fill("input[name=password]", MEMBER_PASSWORD)
        page.click("button[type=submit]:has-text('Sign in')")
        page.wait_for_url(re.compile(r"/members/"))
        page.fill("form[action='/members/new/'] input[name=name]", "Bea Browser")
        page.fill("form[action='/members/new/'] input[name=email]", "bea@example.test")
        page.click("button:has-text('Send invitation')")
        page.wait_for_selector("text=Bea Browser was invited")
        assert page.locator("text=Invitation pending").count() == 1
        link = re.search(r"http://\S+/set-password/\S+/", mail.outbox[-1].body)
        assert link, mail.outbox[-1].body
        page.click("button:has-text('Sign out')")
        page.goto(link.group(0))
        page.fill("input[name=password]", "bea-chooses-a-password-3")
        page.fill("input[name=confirm]", "bea-chooses-a-password-3")
        page.click("button:has-text('Set password')")
        page.wait_for_selector("text=Your password is set")
        assert page.locator("text=Signed in as").inner_text().endswith("Bea Browser")
        page.click("button:has-text('Sign out')")
        page.goto(link.group(0))
        assert page.locator("text=This link no longer works").count() == 1  # single use
        page.goto(f"{origin}/login/")
        page.fill("input[name=email]", "bea@example.test")
        page.fill("input[name=password]", "bea-chooses-a-password-3")
        page.click("button[type=submit]:has-text('Sign in')")
        page.wait_for_url(re.compile(r"/members/"))
        assert "Bea Browser" in page.inner_text("body")
