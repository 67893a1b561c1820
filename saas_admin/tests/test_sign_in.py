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


def test_an_address_is_locked_out_of_an_account_after_repeated_failures_even_with_the_right_password(
    client, operator, settings
):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_FREE = 10  # no progressive delay before the limit in this test
    for _ in range(3):
        sign_in(client, operator.username, "wrong-password-xyz")
    response = sign_in(client, operator.username, PASSWORD)
    assert response.status_code == 200
    assert b"Too many failed sign-ins for this account from your network address" in response.content
    assert "_auth_user_id" not in client.session
    assert AuditEntry.objects.filter(action="auth.login_blocked", target_id=operator.username).count() == 1
    # Blocked attempts don't extend the lockout: only real failures count.
    assert AuditEntry.objects.filter(action="auth.login_failed").count() == 3


def test_an_attacker_cannot_lock_the_owner_out_from_another_address(client, platform_admin, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(5):
        sign_in(client, platform_admin.username, "wrong-password-xyz")
    owner = Client()
    response = owner.post(
        "/login/", {"username": platform_admin.username, "password": PASSWORD}, REMOTE_ADDR="198.51.100.20"
    )
    assert response.status_code == 302


def test_failures_beyond_the_free_ones_make_the_next_try_wait_longer_and_longer(operator, settings):
    from core import limits

    settings.LOGIN_FAILURE_FREE = 2
    settings.LOGIN_FAILURE_LIMIT = 10
    delays = [limits.signin_failed("operator", operator.username, "203.0.113.7")[1] for _ in range(6)]
    assert delays == [0, 1, 2, 4, 8, 16]
    assert limits.signin_wait("operator", operator.username, "203.0.113.7") > 8
    assert limits.signin_wait("operator", operator.username, "198.51.100.1") == 0


def test_the_lockout_counts_usernames_case_insensitively(client, operator, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    sign_in(client, operator.username.upper(), "wrong-password-xyz")
    sign_in(client, operator.username, "wrong-password-xyz")
    response = sign_in(client, operator.username, PASSWORD)
    assert b"Too many failed sign-ins" in response.content


def test_the_lockout_is_kept_in_the_shared_cache_not_in_process_memory(operator, settings):
    from django.core.cache import caches

    from core import limits

    assert settings.CACHES["limits"]["BACKEND"] in (
        "core.cache.JSONDatabaseCache",
        "django.core.cache.backends.redis.RedisCache",
    )
    settings.LOGIN_FAILURE_LIMIT = 1
    limits.signin_failed("operator", operator.username, "203.0.113.7")
    # A fresh cache object (what another process has) sees the same lock.
    caches._connections.__dict__.pop("limits", None)  # noqa: SLF001 - simulate a new process
    assert limits.signin_locks("operator", operator.username)[0].address == "203.0.113.7"


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
    assert b"Too many failed sign-ins" in response.content
    other = Client()
    assert (
        other.post(
            "/login/", {"username": viewer.username, "password": PASSWORD}, REMOTE_ADDR="198.51.100.9"
        ).status_code
        == 302
    )


def test_locked_operators_show_on_the_operators_screen_and_an_admin_unlocks_them(
    client, client_for, operator, platform_admin, settings
):
    settings.LOGIN_FAILURE_LIMIT = 2
    sign_in(client, operator.username, "wrong-password-xyz")
    sign_in(client, operator.username, "wrong-password-xyz")
    admin = client_for(platform_admin)
    page = admin.get("/operators/").content.decode()
    assert "Locked" in page and "203.0.113.7" in page
    response = admin.post(f"/operators/{operator.pk}/unlock/")
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="operator.unlock")
    assert entry.actor == platform_admin and entry.details["addresses"] == ["203.0.113.7"]
    assert sign_in(client, operator.username, PASSWORD).status_code == 302
    assert "Locked" not in admin.get("/operators/").content.decode()


def test_only_admins_unlock_operators(client_for, operator, viewer):
    assert client_for(operator).post(f"/operators/{viewer.pk}/unlock/").status_code == 403
    assert client_for(viewer).post(f"/operators/{operator.pk}/unlock/").status_code == 403
    assert Client().post(f"/operators/{operator.pk}/unlock/").status_code == 302  # to sign-in


def test_the_limits_clear_command_forgets_every_counter(operator, settings):
    from django.core.management import call_command

    from core import limits

    settings.LOGIN_FAILURE_LIMIT = 1
    limits.signin_failed("operator", operator.username, "203.0.113.7")
    assert limits.signin_wait("operator", operator.username, "203.0.113.7") > 0
    call_command("limits_clear")
    assert limits.signin_wait("operator", operator.username, "203.0.113.7") == 0
