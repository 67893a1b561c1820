from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEntry

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password-1"


def sign_in(client: Client, username: str, password: str, **extra):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR="203.0.113.7", **extra)


def test_the_sign_in_page_renders_for_anonymous_visitors(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Sign in" in response.content and b'name="password"' in response.content


def test_a_successful_sign_in_is_audited_with_who_and_where(client, operator):
    response = sign_in(client, operator.username, PASSWORD, HTTP_USER_AGENT="pytest-browser")
    assert response.status_code == 302 and response["Location"] == "/"
    entry = AuditEntry.objects.get(action="auth.login")
    assert entry.actor == operator
    assert entry.ip_address == "203.0.113.7"
    assert entry.user_agent == "pytest-browser"
    assert entry.target_id == operator.username


def test_a_failed_sign_in_is_audited_without_the_password(client, operator):
    response = sign_in(client, operator.username, "wrong-password-xyz")
    assert response.status_code == 200
    assert b"don&#x27;t match an active operator account" in response.content
    entry = AuditEntry.objects.get(action="auth.login_failed")
    assert entry.actor is None and entry.actor_label == operator.username
    stored = f"{entry.summary} {entry.details} {entry.target_id} {entry.actor_label}"
    assert "wrong-password-xyz" not in stored


def test_sign_out_is_post_only_and_audited(client, viewer):
    sign_in(client, viewer.username, PASSWORD)
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="auth.logout", actor=viewer).count() == 1
    assert client.get("/").status_code == 302  # signed out


def test_non_staff_users_cannot_sign_in_to_the_dashboard(client, outsider):
    response = sign_in(client, outsider.username, PASSWORD)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert AuditEntry.objects.filter(action="auth.login_failed", target_id=outsider.username).exists()


def test_an_account_is_locked_after_repeated_failures_even_with_the_right_password(client, operator, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        sign_in(client, operator.username, "wrong-password-xyz")
    response = sign_in(client, operator.username, PASSWORD)
    assert response.status_code == 200
    assert b"Too many failed sign-ins for this account" in response.content
    assert "_auth_user_id" not in client.session
    assert AuditEntry.objects.filter(action="auth.login_blocked", target_id=operator.username).count() == 1
    # Blocked attempts don't extend the lockout: only real failures count.
    assert AuditEntry.objects.filter(action="auth.login_failed").count() == 3


def test_the_lockout_counts_usernames_case_insensitively(client, operator, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    sign_in(client, operator.username.upper(), "wrong-password-xyz")
    sign_in(client, operator.username, "wrong-password-xyz")
    response = sign_in(client, operator.username, PASSWORD)
    assert b"Too many failed sign-ins" in response.content


def test_the_lockout_ends_when_the_failures_leave_the_window(client, operator, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    sign_in(client, operator.username, "wrong-password-xyz")
    sign_in(client, operator.username, "wrong-password-xyz")
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 0
    response = sign_in(client, operator.username, PASSWORD)
    assert response.status_code == 302


def test_a_successful_sign_in_resets_the_failure_count(client, operator, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    sign_in(client, operator.username, "wrong-password-xyz")
    assert sign_in(client, operator.username, PASSWORD).status_code == 302
    client.post("/logout/")
    sign_in(client, operator.username, "wrong-password-xyz")
    assert sign_in(client, operator.username, PASSWORD).status_code == 302


def test_many_failures_from_one_address_block_that_address(client, operator, viewer, settings):
    settings.LOGIN_FAILURE_IP_LIMIT = 3
    for name in ("nobody1", "nobody2", "nobody3"):
        sign_in(client, name, "wrong-password-xyz")
    response = sign_in(client, viewer.username, PASSWORD)
    assert b"Too many failed sign-ins from your network address" in response.content
    other = Client()
    assert (
        other.post(
            "/login/", {"username": viewer.username, "password": PASSWORD}, REMOTE_ADDR="198.51.100.9"
        ).status_code
        == 302
    )
