"""Regression tests for the defects found trying the control plane as a new user and as an attacker (issue 10)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client

pytestmark = pytest.mark.django_db
BASE_DIR = Path(__file__).resolve().parents[1]

BAD_QUERIES = [
    "/tenants/?q=x%00",
    "/events/?aggregate_id=x%00",
    "/sagas/?tenant=x%00",
    "/api/audit?actor=%00",
    "/api/events/?log=%00abc",
    "/api/events/state/a%00/b",
    "/api/sagas/?offset=-1",
    "/api/tenants/?page=99999999999999999999",
    "/api/migrations/runs/00000000-0000-0000-0000-000000000001/jobs?offset=99999999999999999999999999",
    "/tenants/?page=99999999999999999999",
    "/audit/?before=99999999999999999999999",
]


@pytest.mark.parametrize("path", BAD_QUERIES)
def test_bad_query_parameters_answer_400_with_one_sentence(path, platform_admin, client_for, api_client_for):
    client = api_client_for(platform_admin) if path.startswith("/api/") else client_for(platform_admin)
    client.raise_request_exception = False
    response = client.get(path)
    assert response.status_code == 400, (path, response.content[:200])
    if path.startswith("/api/"):
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail.endswith(".") and detail.count(". ") == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/migrations/runs", {"canary_size": 6111832035}),
        ("/api/migrations/runs", []),
        ("/api/tenants/", {"slug": "abc-def", "isolation": "shared", "idempotency_key": "k" * 300}),
        ("/api/tenants/", [{"slug": "abc-def"}]),
        ("/api/tokens", {"name": "x\u0000y"}),
    ],
)
def test_bad_bodies_answer_400_with_one_sentence_and_start_nothing(path, body, platform_admin, api_client_for):
    from migration_runs.models import MigrationRun
    from sagas.models import Saga

    response = api_client_for(platform_admin).post(path, body, content_type="application/json")
    assert response.status_code == 400 and isinstance(response.json()["detail"], str)
    assert not MigrationRun.objects.exists() and not Saga.objects.exists()


def test_workspace_links_use_the_port_make_run_serves_on(settings):
    from tenants.services import workspace_url

    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.TENANCY_WORKSPACE_PORT)"],
        env={
            "PORT": "8101",
            "DJANGO_SETTINGS_MODULE": "saas_admin.settings.test",
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x",
        },  # fmt: skip
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "8101"
    settings.TENANCY_WORKSPACE_PORT = "8101"
    assert workspace_url("acme", "/x/") == "http://acme.localhost:8101/x/"


def test_api_docs_are_served_from_local_static_files(platform_admin, client_for):
    page = client_for(platform_admin).get("/api/docs").content.decode()
    assert "cdn." not in page and "unpkg" not in page and "jsdelivr" not in page
    assert "/static/ninja/swagger-ui-bundle.js" in page


@pytest.mark.parametrize("literal", ["0.0.0.0", "10.1.2.3", "[::1]", "http://127.0.0.1:8000/", "1.2.3.4.5"])
def test_custom_domains_refuse_ip_literals(literal):
    from core.errors import InvalidInput
    from tenants.services import domain_validate_new
    from tests.factories import TenantFactory

    with pytest.raises(InvalidInput):
        domain_validate_new(tenant=TenantFactory(), domain=literal)


def test_the_plain_text_verification_email_shows_names_as_typed():
    from tenants.signup_services import signup_request

    data = {"name": "Smith & <Sons>", "slug": "smith", "email": "a@example.test", "plan": "free", "password": "x" * 12}
    signup_request(data=data, request_key="k", verify_url=lambda token: "http://localhost/v/")
    body = mail.outbox[0].body
    assert "Smith & <Sons>" in body and "&amp;" not in body and "&lt;" not in body


def test_the_development_mailbox_keeps_emails_and_the_outbox_shows_them(tmp_path, settings, viewer, client_for):
    from django.core.mail import get_connection, send_mail

    from saas_admin import devmail

    settings.DEV_MAILBOX_DIR = str(tmp_path)
    send_mail("Hello & welcome", "Open http://x.localhost:8000/a/", "cp@localhost", ["o@example.test"],
              connection=get_connection("saas_admin.devmail.MailboxBackend"))  # fmt: skip
    [kept] = devmail.mailbox_list()
    assert kept.subject == "Hello & welcome" and "http://x.localhost:8000/a/" in kept.body
    # The page exists only in development (the URL is registered with the mailbox backend).
    import importlib

    from django.urls import clear_url_caches

    import saas_admin.dashboard_urls
    import saas_admin.urls

    settings.EMAIL_BACKEND = "saas_admin.devmail.MailboxBackend"
    importlib.reload(saas_admin.dashboard_urls)
    importlib.reload(saas_admin.urls)
    clear_url_caches()
    try:
        client = client_for(viewer)
        assert b"Outbox" in client.get("/").content
        page = client.get("/outbox/").content.decode()
        assert "Hello &amp; welcome" in page
        assert client.get(f"/outbox/{kept.id}/").status_code == 200
        assert Client().get("/outbox/").status_code == 302
    finally:
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        importlib.reload(saas_admin.dashboard_urls)
        importlib.reload(saas_admin.urls)
        clear_url_caches()
    assert "outbox" not in str(saas_admin.dashboard_urls.urlpatterns)


def test_the_empty_tenants_page_points_at_the_provision_button(operator, client_for):
    page = client_for(operator).get("/tenants/").content.decode()
    assert "No tenants yet" in page and page.count('href="/tenants/new/"') >= 2


@pytest.mark.parametrize(
    ("path", "section"),
    [("/", "/"), ("/tenants/", "/tenants/"), ("/tenants/new/", "/tenants/"), ("/sagas/", "/sagas/"),
     ("/audit/", "/audit/"), ("/account/tokens/", "/account/tokens/"), ("/account/mfa/", "/account/mfa/")],
)  # fmt: skip
def test_the_navigation_highlights_the_section_you_are_in(path, section, platform_admin, client_for):
    page = client_for(platform_admin).get(path).content.decode()
    current = re.findall(r'class="nav-link is-current" href="([^"]+)"', page)
    assert current == [section], (path, current)


def test_suspend_cancel_and_revoke_ask_for_confirmation():
    for template, action in [
        ("tenants/detail.html", "tenants:suspend"),
        ("sagas/detail.html", "'cancel'"),
        ("migration_runs/run_detail.html", "migration_runs:run_cancel"),
        ("dashboard/tokens.html", "dashboard:token_revoke"),
    ]:
        text = (BASE_DIR / "templates" / template).read_text()
        forms = [line for line in text.splitlines() if action in line and "<form" in line]
        assert forms and all("confirm(" in line for line in forms), template


def test_beat_finds_its_schedule_folder_on_a_fresh_clone(tmp_path, settings):
    from saas_admin.celery import ensure_filesystem_broker_folders

    settings.CELERY_BEAT_SCHEDULE_FILENAME = str(tmp_path / "fresh" / ".data" / "celerybeat-schedule")
    ensure_filesystem_broker_folders()
    assert (tmp_path / "fresh" / ".data").is_dir()


def test_a_host_header_nobody_answers_to_gets_one_json_sentence_under_the_api(client):
    response = client.get("/api/tenants/", HTTP_HOST="rXz1G6t'F.s;{_U")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "The Host header names no address this server answers to."}
    page = client.get("/tenants/", HTTP_HOST="rXz1G6t'F.s;{_U")
    assert page.status_code == 400 and "Host header" in page.content.decode()
