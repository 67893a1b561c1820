"""Real-browser fixtures: Playwright driving Debian's Chromium against pytest-django's live server.

A pytest plugin of the root conftest.py (tests/test_browser*.py use it):

- `browser` (module): Chromium launched by executable path (`BROWSER_EXECUTABLE`, default the first
  of `chromium` / `chromium-browser` on PATH), so Playwright's own browser downloads are never
  needed. Skipped (not failed) when the binary or the playwright package is missing — except under
  CI (`CI=true`), where `.ci/run` installs Chromium and a missing browser is a failure.
- `page` (function): a fresh browser context and page, 15 s default timeout.
- `screenshot_on_failure(page, name)`: a full-page screenshot under `.data/screenshots/<name>.png`
  when the block raises (the path is printed); with `BROWSER_SCREENSHOTS=1`, `snap(page, name)`
  saves one on success too, for looking at the screens while developing.
- `sign_in_operator(page, live_server, user)`: the browser carries a session of `user` that already
  passed two-factor sign-in (the sign-in and enrolment screens have their own browser test).
- `no_reload_marker(page)` / `assert_not_reloaded(page)`: a flag on `window` that only a full page
  load clears, to prove a screen changed through htmx.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

EXECUTABLE = os.environ.get("BROWSER_EXECUTABLE") or shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".data" / "screenshots"  # settings may not be set up yet


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} CI must run the browser tests (.ci/run installs chromium).")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not EXECUTABLE:
        _skip_or_fail("No chromium binary on PATH (apt install chromium); browser tests skipped.")
    try:
        from playwright import sync_api  # optional at import time: the suite runs without it
    except ImportError:
        _skip_or_fail("The playwright package is not installed; browser tests skipped.")
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
def page(browser) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def snap(page: Any, name: str) -> None:
    """A screenshot for a person to look at, only with BROWSER_SCREENSHOTS=1 (development)."""
    if os.environ.get("BROWSER_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


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


def sign_in_operator(page: Any, live_server: Any, user: Any) -> None:
    """Give the browser a session of `user` that passed two-factor sign-in (made server-side)."""
    from django.conf import settings  # at call time: pytest loads this plugin before Django is set up
    from django.test import Client

    from tests.support.personas import mfa_verify_client

    client = Client()
    client.force_login(user)
    mfa_verify_client(client, user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


def no_reload_marker(page: Any) -> None:
    page.evaluate("window.__noReload = true")


def assert_not_reloaded(page: Any) -> None:
    assert page.evaluate("window.__noReload === true"), "the page was reloaded; it should update in place"


__all__ = [
    "EXECUTABLE",
    "assert_not_reloaded",
    "browser",
    "no_reload_marker",
    "page",
    "screenshot_on_failure",
    "sign_in_operator",
    "snap",
]
