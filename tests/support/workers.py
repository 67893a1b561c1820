"""Test support shared by the real-Celery-worker harnesses.

`tests/support/sagas.py::CeleryHarness` (solo worker + beat) and
`tests/support/migrations.py::Worker` (prefork worker killed with SIGKILL) are thin users of:

- `PrivateBroker`: a broker nobody else uses — a fresh filesystem-transport folder, or a Redis URL
  that is flushed — plus the environment of a worker subprocess on it, and the repointing (and
  restoring) of this process's Celery app so that tests publish to the same broker. The folder
  also holds the subprocess logs.
- `spawn_celery()`, `terminate()`, `kill()`: `celery -A saas_admin …` subprocesses in their own
  process group.

The root conftest.py drops CELERY_BROKER_URL from os.environ (Celery lets it override
`app.conf.broker_url`); the worker environment always sets it explicitly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def database_url(name: str) -> str:
    """A DATABASE_URL for database `name` with the bootstrap credentials (what worker subprocesses get)."""
    from django.conf import settings

    cfg = settings.DATABASE_BOOTSTRAP
    auth = cfg.get("USER") or "postgres"
    if cfg.get("PASSWORD"):
        auth += f":{cfg['PASSWORD']}"
    return f"postgres://{auth}@{cfg.get('HOST') or '127.0.0.1'}:{cfg.get('PORT') or 5432}/{name}"


def reset_pools(app) -> None:
    """Forget the app's broker connections and producers so the next publish uses the new broker.

    The app's pool is kombu's process-wide pool for an *equal* connection, and the producer pool
    kombu keeps beside it holds that pool: closing one without forgetting both left a producer pool
    on a closed connection pool, so the next publish to an equal broker URL (every filesystem:// one)
    failed with "Acquire on closed pool" and the job's message was lost. kombu.pools.reset() closes
    and forgets every group."""
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


class PrivateBroker:
    """`url` is "filesystem://" (a private folder, made here) or e.g. redis://127.0.0.1:6379/4 (flushed
    when the app is attached). `attach()` points this process's Celery app at it, `close()` puts the
    app back and removes the folder."""

    def __init__(self, url: str = "filesystem://", *, prefix: str = "celery-broker-") -> None:
        self.url = url
        self.folder = Path(tempfile.mkdtemp(prefix=prefix))
        self._saved: dict | None = None

    @property
    def is_filesystem(self) -> bool:
        return self.url.startswith("filesystem")

    def publisher_env(self) -> dict[str, str]:
        """What another process (worker, beat, manage.py …) needs to use this broker."""
        return {"CELERY_BROKER_URL": self.url, "CELERY_FILESYSTEM_FOLDER": str(self.folder)}

    def worker_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Environment of a worker subprocess on this broker and the test database; `extra` wins."""
        from django.conf import settings

        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "saas_admin.settings.test",
            "DATABASE_URL": database_url(settings.DATABASES["default"]["NAME"]),
            **self.publisher_env(),
            **(extra or {}),
        }

    def transport_options(self) -> dict:
        """The same options saas_admin/settings/base.py gives a process with CELERY_FILESYSTEM_FOLDER."""
        if not self.is_filesystem:
            return {"visibility_timeout": 3600}
        return {
            "data_folder_in": str(self.folder / "queue"),
            "data_folder_out": str(self.folder / "queue"),
            "processed_folder": str(self.folder / "processed"),
            "control_folder": str(self.folder / "control"),
            "store_processed": False,
            "polling_interval": 0.05,
        }

    def attach(self) -> None:
        from saas_admin.celery import app

        for sub in ("queue", "processed", "control"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        if self._saved is None:
            self._saved = {"url": app.conf.broker_url, "opts": app.conf.broker_transport_options}
        app.conf.broker_url = self.url
        app.conf.broker_transport_options = self.transport_options()
        reset_pools(app)
        if self.url.startswith("redis"):
            with app.connection_for_write() as conn:
                conn.default_channel.client.flushdb()

    def detach(self) -> None:
        from saas_admin.celery import app

        if self._saved is not None:
            app.conf.broker_url = self._saved["url"]
            app.conf.broker_transport_options = self._saved["opts"]
            self._saved = None
            reset_pools(app)

    def close(self) -> None:
        self.detach()
        shutil.rmtree(self.folder, ignore_errors=True)

    def logs(self, tail: int = 3000) -> str:
        """The last `tail` characters of every subprocess log in the folder."""
        return "\n".join(p.read_text(errors="replace")[-tail:] for p in sorted(self.folder.glob("*.log")))


def spawn_celery(args: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`python -m celery -A saas_admin <args>` in its own process group, output into `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "saas_admin", *args],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill(proc: subprocess.Popen | None) -> None:
    """SIGKILL to the process group (a prefork worker's children too) and reap it."""
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def terminate(*procs: subprocess.Popen | None, timeout: float = 10) -> None:
    """SIGTERM to each process group, then SIGKILL whatever has not exited after `timeout` seconds."""
    for proc in procs:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        if proc is None:
            continue
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
