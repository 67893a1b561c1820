"""Real-browser tests: Playwright driving Debian's Chromium against a live server.

Skipped (not failed) when the `chromium` binary or the playwright package is missing; `.ci/run`
installs Chromium. Launched by executable path (`BROWSER_EXECUTABLE`, default the first of
`chromium` / `chromium-browser` on PATH), so Playwright's own browser downloads are never needed.
On failure a full-page screenshot is saved under `.data/screenshots/` and the path is printed.

- operator sign-in with two-factor enrolment (the first sign-in goes straight to enrolment);
- workspace invitation → set password → sign in, on a tenant host (`<slug>.localhost`, which
  Chromium resolves to loopback) served as the real data-plane role.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail

pytestmark = [pytest.mark.browser, pytest.mark.django_db(databases="__all__", transaction=True)]

EXECUTABLE = os.environ.get("BROWSER_EXECUTABLE") or shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(settings.BASE_DIR) / ".data" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not EXECUTABLE:
        pytest.skip("No chromium binary on PATH (apt install chromium); browser tests skipped.")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop running in this thread, which Django takes for an
    # async context; the test's own ORM calls are plain synchronous ones, so allow them.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=EXECUTABLE, headless=True, args=["--no-sandbox"])
            yield chromium
            chromium.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def page(browser, request) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@contextmanager
def screenshot_on_failure(page: Any, name: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
            print(f"screenshot: {path} (at {page.url})")
        except Exception as exc:  # the browser itself may be gone; the original failure matters more
            print(f"no screenshot: {exc}")
        raise


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
