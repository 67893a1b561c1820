"""Test support for cross-tenant migrations (used by tests/test_migration_runs*.py).

- `ThrowawayMigration`: a temporary copy of the `workspace` migrations package plus one extra
  migration (a CHECK constraint that members named "forbidden" violate; optionally a pg_sleep),
  enabled through MIGRATION_MODULES in this process and through DJANGO_MIGRATION_MODULES +
  PYTHONPATH in a worker subprocess. Nothing is written into the source tree.
- `Worker`: a real Celery worker subprocess (prefork, SIGKILL on `kill()`) on a private broker
  (tests/support/workers.py::PrivateBroker), connected to the test database; the test process
  publishes to the same broker.
- `drop_placements()`: drops the schemas/databases tests created, so nothing outlives a test.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings

from tests.support.workers import PrivateBroker, kill, spawn_celery

BASE_DIR = Path(__file__).resolve().parents[2]
CONSTRAINT = "migtest_no_forbidden_names"
MIGRATION_NAME = "9001_migtest_no_forbidden_names"
_instances = itertools.count(1)

_TEMPLATE = """import os

from django.db import migrations

SLEEP = float(os.environ.get("MIGTEST_SLEEP", "0") or 0)


class Migration(migrations.Migration):
    dependencies = [("workspace", {leaf!r})]
    operations = [
        migrations.RunSQL(
            ["ALTER TABLE workspace_member ADD CONSTRAINT {constraint} CHECK (name <> 'forbidden')"]
            + ([f"SELECT pg_sleep({{SLEEP}})"] if SLEEP else []),
            reverse_sql="ALTER TABLE workspace_member DROP CONSTRAINT {constraint}",
        ),
    ]
"""


class ThrowawayMigration:
    def __init__(self) -> None:
        from django.db.migrations.loader import MigrationLoader

        loader = MigrationLoader(None, ignore_no_migrations=True)
        leaves = loader.graph.leaf_nodes("workspace")
        assert leaves, f"no workspace migrations found (MIGRATION_MODULES={settings.MIGRATION_MODULES!r})"
        self.leaf = leaves[0][1]
        self.root = Path(tempfile.mkdtemp(prefix="migtest-"))
        self.module = f"migtest_workspace_{os.getpid()}_{next(_instances)}"
        self._settings = None
        package = self.root / self.module
        shutil.copytree(BASE_DIR / "workspace" / "migrations", package, ignore=shutil.ignore_patterns("__pycache__"))
        (package / f"{MIGRATION_NAME}.py").write_text(_TEMPLATE.format(leaf=self.leaf, constraint=CONSTRAINT))
        self.key = ("workspace", MIGRATION_NAME)

    def enable(self, django_settings) -> None:
        """`django_settings`: pytest-django's `settings` fixture, which restores MIGRATION_MODULES."""
        sys.path.insert(0, str(self.root))
        self._settings = django_settings
        django_settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, "workspace": self.module}
        importlib.invalidate_caches()

    def disable(self) -> None:
        """Back to the real migrations now (teardowns rebuild templates before `settings` is restored)."""
        if self._settings is not None:
            self._settings.MIGRATION_MODULES = {k: v for k, v in settings.MIGRATION_MODULES.items() if v != self.module}
        if str(self.root) in sys.path:
            sys.path.remove(str(self.root))
        for name in [n for n in sys.modules if n.startswith(self.module)]:
            del sys.modules[name]

    def worker_env(self) -> dict[str, str]:
        return {
            "DJANGO_MIGRATION_MODULES": json.dumps({"workspace": self.module}),
            "PYTHONPATH": os.pathsep.join([str(self.root), str(BASE_DIR), os.environ.get("PYTHONPATH", "")]),
        }

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Worker:
    """A real Celery worker (prefork) on a private filesystem broker; `kill()` is SIGKILL to its group."""

    def __init__(
        self, extra_env: dict[str, str] | None = None, concurrency: int = 2, broker_url: str = "filesystem://"
    ) -> None:
        """`broker_url`: a private filesystem folder by default, or e.g. redis://127.0.0.1:6379/5 (flushed)."""
        self.broker = PrivateBroker(broker_url, prefix="migruns-broker-")
        self.folder = self.broker.folder
        self.concurrency = concurrency
        self.broker_url = broker_url
        self.env = self.broker.worker_env(
            {"MIGRATIONS_JOB_LEASE_SECONDS": str(settings.MIGRATIONS_JOB_LEASE_SECONDS), **(extra_env or {})}
        )
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, **env: str) -> Worker:
        if self.starts == 0:
            self.broker.attach()  # the test process publishes to the same private broker
        self.starts += 1
        self.proc = spawn_celery(
            [
                "worker",
                "-l",
                "warning",
                "--pool",
                "prefork",
                "--concurrency",
                str(self.concurrency),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env={**self.env, **env},
            log=self.folder / f"worker-{self.starts}.log",
        )
        return self

    def kill(self) -> None:
        kill(self.proc)

    def stop(self) -> None:
        self.kill()  # tests wait for their runs to finish first; a warm shutdown only costs time
        self.broker.close()

    def publisher_env(self) -> dict[str, str]:
        """Environment for another process (e.g. manage.py migrate_tenants) that sends to this worker."""
        return self.broker.publisher_env()

    def logs(self) -> str:
        return self.broker.logs(tail=4000)


def wait_for(predicate, *, timeout: float = 90.0, interval: float = 0.2, worker: Worker | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out" + (f"; worker log:\n{worker.logs()}" if worker else ""))


def drop_placements() -> None:
    """Drop every schema and database the Placement rows point at (tests only; rows are flushed after)."""
    from tenants import placements
    from tenants.databases import unregister_alias
    from tenants.models import Placement

    for p in Placement.objects.all():
        if p.kind == Placement.Kind.DATABASE:
            unregister_alias(p.database_alias)
            placements.drop_database(p.db_name)
        else:
            placements.drop_schema(p.schema_name)


def unapply_latest(placement, app_label: str = "workspace") -> tuple[str, str]:
    """Migrate one placement's `app_label` back by its latest migration, as the owner: the placement
    now has one pending migration, real work for a migration run without a throwaway migration.
    Returns the unapplied migration's key."""
    import copy
    import uuid

    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor
    from psycopg import sql

    from core import tenancy
    from tenants.databases import register_placement

    if placement.database_alias != "default":
        register_placement(placement)
    schema = placement.schema_name if placement.database_alias == "default" else "public"
    private = f"tenant_unmigrate_{uuid.uuid4().hex[:12]}__owner"  # like placements._executor_run
    connections.settings[private] = copy.deepcopy(connections.settings[placement.owner_alias])
    connection = connections[private]
    try:
        with tenancy.placement_migration():
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("SET search_path TO {}, pg_temp").format(sql.Identifier(schema)).as_string(None))
            executor = MigrationExecutor(connection)
            (leaf,) = executor.loader.graph.leaf_nodes(app_label)
            (parent,) = [p for p in executor.loader.graph.node_map[leaf].parents if p[0] == app_label]
            executor.migrate([parent])
            return leaf
    finally:
        connection.close()
        del connections[private]
        connections.settings.pop(private, None)
