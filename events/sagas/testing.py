"""Test support for sagas: operator personas and a real Celery worker in a subprocess.

Import the fixtures into a test module (`from events.sagas.testing import operator, ...`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest


def make_operator(username: str, role_name: str | None, *, staff: bool = True):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(
        username=username, email=f"{username}@example.com", password="a-long-password-1", is_staff=staff
    )
    if role_name:
        # Transactional tests flush the groups the data migration made, so make sure they exist.
        user.groups.add(Group.objects.get_or_create(name=role_name)[0])
    return user


@pytest.fixture
def platform_admin(db):
    return make_operator("platform_admin", "Admin")


@pytest.fixture
def operator(db):
    return make_operator("operator", "Operator")


@pytest.fixture
def viewer(db):
    return make_operator("viewer", "Viewer")


@pytest.fixture
def outsider(db):
    return make_operator("outsider", None, staff=False)


# --- a real Celery worker in a subprocess ---------------------------------------------


BASE_DIR = Path(__file__).resolve().parent.parent.parent

# Tiny leases and backoffs so fault-injection runs converge in seconds.
FAST_SAGA_ENV = {
    "SAGA_FAULT_INJECTION": "1",
    "SAGA_STEP_LEASE_SECONDS": "1.5",
    "SAGA_SWEEP_INTERVAL_SECONDS": "0.5",
    "SAGA_SWEEP_GRACE_SECONDS": "2",
    "SAGA_RETRY_BACKOFF_SECONDS": "0.05",
    "SAGA_RETRY_BACKOFF_MAX_SECONDS": "0.2",
}


def _database_url(name: str) -> str:
    from django.conf import settings

    cfg = settings.DATABASE_BOOTSTRAP
    auth = cfg.get("USER") or "postgres"
    if cfg.get("PASSWORD"):
        auth += f":{cfg['PASSWORD']}"
    return f"postgres://{auth}@{cfg.get('HOST') or '127.0.0.1'}:{cfg.get('PORT') or 5432}/{name}"


class CeleryHarness:
    """A private broker (filesystem folder, or SAGA_TEST_BROKER_URL e.g. redis://…/4), one solo-pool
    worker that the tests may kill and restart, and a beat process that sends the sweeper."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        from django.conf import settings

        self.folder = Path(tempfile.mkdtemp(prefix="saga-broker-"))
        self.broker_url = os.environ.get("SAGA_TEST_BROKER_URL") or "filesystem://"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "saas_admin.settings.test",
            "DATABASE_URL": _database_url(settings.DATABASES["default"]["NAME"]),
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_FILESYSTEM_FOLDER": str(self.folder),
            **FAST_SAGA_ENV,
            **(extra_env or {}),
        }
        self.worker: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self.restarts = 0
        self._saved: dict = {}

    # The test process publishes to the same private broker.
    def _point_app_at_broker(self) -> None:
        from saas_admin.celery import app

        (self.folder / "queue").mkdir(parents=True, exist_ok=True)
        (self.folder / "processed").mkdir(parents=True, exist_ok=True)
        self._saved = {"broker_url": app.conf.broker_url, "opts": app.conf.broker_transport_options}
        app.conf.broker_url = self.broker_url
        app.conf.broker_transport_options = {
            "data_folder_in": str(self.folder / "queue"),
            "data_folder_out": str(self.folder / "queue"),
            "processed_folder": str(self.folder / "processed"),
            "control_folder": str(self.folder / "control"),
            "store_processed": False,
            "polling_interval": 0.05,
        }
        self._reset_pools(app)
        if self.broker_url.startswith("redis"):
            with app.connection_for_write() as conn:
                conn.default_channel.client.flushdb()

    @staticmethod
    def _reset_pools(app) -> None:
        if app._pool is not None:
            app._pool.force_close_all()
            app._pool = None
        app.amqp._producer_pool = None

    def _spawn(self, *args: str) -> subprocess.Popen:
        log = open(self.folder / f"{args[0]}-{self.restarts}.log", "wb")  # noqa: SIM115
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "saas_admin", *args],
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self) -> CeleryHarness:
        self._point_app_at_broker()
        self.start_worker()
        self.beat = self._spawn(
            "beat", "-l", "warning", "-s", str(self.folder / "beat-schedule"), "--max-interval", "1"
        )
        return self

    def start_worker(self) -> None:
        self.worker = self._spawn("worker", "-l", "warning", "--pool", "solo", "--without-gossip", "--without-mingle")

    def ensure_worker(self) -> bool:
        """Restart the worker if it died (fault injection kills it). True if it was restarted."""
        if self.worker is not None and self.worker.poll() is not None:
            self.restarts += 1
            self.start_worker()
            return True
        return False

    def stop(self) -> None:
        import shutil
        import signal

        from saas_admin.celery import app

        for proc in (self.worker, self.beat):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in (self.worker, self.beat):
            if proc is None:
                continue
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        app.conf.broker_url = self._saved.get("broker_url", app.conf.broker_url)
        app.conf.broker_transport_options = self._saved.get("opts", app.conf.broker_transport_options)
        self._reset_pools(app)
        shutil.rmtree(self.folder, ignore_errors=True)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.folder.glob("*.log")))


def wait_for_sagas(harness: CeleryHarness, saga_ids, *, timeout: float = 120.0) -> list:
    """Wait until every saga is terminal, restarting the worker whenever it dies."""
    from events.sagas.models import TERMINAL_SAGA_STATES, Saga

    deadline = time.monotonic() + timeout
    ids = [str(i) for i in saga_ids]
    while time.monotonic() < deadline:
        harness.ensure_worker()
        sagas = list(Saga.objects.filter(id__in=ids))
        if len(sagas) == len(ids) and all(s.state in TERMINAL_SAGA_STATES for s in sagas):
            return sagas
        time.sleep(0.1)
    pending = Saga.objects.filter(id__in=ids).exclude(state__in=TERMINAL_SAGA_STATES)
    raise AssertionError(
        f"{pending.count()} sagas did not settle: {[(s.saga_type, s.state, s.input.get('_fault')) for s in pending]}\n"
        + harness.logs()
    )
