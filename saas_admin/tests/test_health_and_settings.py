from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    body = response.json()
    assert body["database"] == "ok"
    assert "broker" in body
    # The suite's broker (filesystem folder or Redis) is up, so the whole check is green.
    assert response.status_code == 200 and body == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_answers_503_and_names_the_broker_when_it_is_down(client, settings):
    from saas_admin.celery import app

    # Nothing listens on port 1; the check reports instead of raising. The Celery app's own
    # configuration is left alone, so tasks published by later tests still reach the real broker.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    before = app.conf.broker_url
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy" and body["database"] == "ok" and body["broker"] != "ok"
    assert app.conf.broker_url == before


def test_healthz_does_not_accept_writes(client):
    assert client.post("/healthz").status_code == 405


def test_production_settings_pass_check_deploy_without_warnings():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "saas_admin.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DJANGO_ALLOWED_HOSTS": "control.example.com,.control.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.skipif((BASE_DIR / ".env").exists(), reason="a local .env may supply DJANGO_SECRET_KEY")
def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY",)}
    env.update(DJANGO_SETTINGS_MODULE="saas_admin.settings.production", DJANGO_ALLOWED_HOSTS="x.example.com")
    env["FIELD_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
