"""Test database setup and shared personas.

The suite runs against real PostgreSQL (embedded unless DATABASE_URL is set).
pytest-django's stock setup would create the test database as whichever user
the `default` alias has; ours must be owned by the owner role and migrated
through the `owner` alias, while tests query through `default` as the real
app role (NOSUPERUSER NOBYPASSRLS). So `django_db_setup` is replaced here.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections

# Shared fixtures for every test package: personas (platform_admin, operator, viewer, outsider,
# client_for, api_client_for, …), real tenants of each isolation level (tenant_world, make_tenant),
# Chromium for the browser tests (browser, page), and a second PostgreSQL server (second_server).
pytest_plugins = ["tests.support.personas", "tests.support.tenancy", "tests.support.browser", "tests.support.servers"]


@pytest.fixture(scope="session", autouse=True)
def _celery_broker_from_settings_only():
    """Celery lets the CELERY_BROKER_URL environment variable win over `app.conf.broker_url`.

    Tests that run a real worker point the app at a private broker through `app.conf`; with the
    variable set (CI's Redis run) the test process would keep publishing to the shared broker
    while the worker listens on its own. Settings have read the variable already, so drop it here.
    """
    settings.CELERY_BROKER_URL  # noqa: B018 - make sure settings read it first
    saved = os.environ.pop("CELERY_BROKER_URL", None)
    yield
    if saved is not None:
        os.environ["CELERY_BROKER_URL"] = saved


def _point_aliases_at(name: str) -> None:
    for alias in ("default", "owner"):
        connections[alias].close()
        settings.DATABASES[alias]["NAME"] = name


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker, django_test_environment):  # noqa: ARG001
    from core import dbroles

    name = settings.TEST_DATABASE_NAME
    with django_db_blocker.unblock():
        dbroles.ensure_database(name, recreate=True)
        _point_aliases_at(name)
        call_command("migrate", database="owner", interactive=False, verbosity=0)
    yield
    with django_db_blocker.unblock():
        for conn in connections.all():
            conn.close()
            pool = getattr(conn, "_pool", None) or (conn.pool if hasattr(conn, "pool") else None)
            if pool is not None:
                conn.close_pool()
        dbroles.drop_database(name)


@pytest.fixture(autouse=True)
def _forget_the_migration_appliers_connection():
    """The per-placement migration applier keeps a private owner connection open for the worker's
    life (migration_runs/executor.py). In this process an alias that outlives its test is one Django's
    next test case refuses to connect ("not allowed in this test"): close and forget it after each."""
    yield
    from migration_runs.executor import PRIVATE_ALIAS
    from tenants.databases import unregister_alias

    if PRIVATE_ALIAS in connections.settings:
        unregister_alias(PRIVATE_ALIAS)


@pytest.fixture(autouse=True)
def _fresh_shared_caches(request):
    """Rate limits and lockouts live in database tables (the shared caches) that flush does not
    empty: every test that touches the database starts with them empty."""
    names = set(request.fixturenames)
    if not ({"db", "transactional_db", "django_db_setup"} & names or request.node.get_closest_marker("django_db")):
        yield
        return
    transactional = _is_transactional(request)
    request.getfixturevalue("transactional_db" if transactional else "db")
    if transactional:
        _drop_orphan_pools()
    from django.core.cache import caches

    for alias in ("default", "limits", "tenant_limits"):
        caches[alias].clear()
    yield
    _forget_dropped_databases()


def _drop_orphan_pools() -> None:
    """Drop pool schemas no Placement row names any more. An earlier transactional test's flush removes
    the rows but not the schema: a tenant moved into a pool leaves its rows there, and the next pool
    opened under that name (provisioning reuses an existing schema, as a retry after a crash needs)
    would start with someone else's rows and ids."""
    from tenants import placements

    # Its own connection: a test limited to some databases may not open the owner alias.
    with placements.owner_connect(autocommit=True) as conn:
        orphans = [
            row[0]
            for row in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname ~ '^pool_[0-9]+$' AND nspname NOT IN"
                " (SELECT schema_name FROM tenants_placement WHERE kind = 'pool')"
            )
        ]
    for schema in orphans:
        placements.drop_schema(schema)


def _forget_dropped_databases() -> None:
    """Unregister this process's aliases of dedicated databases that another process dropped (a worker
    purging a moved tenant's source, a deletion saga): the flush after a transactional test visits every
    registered alias and would wait on a pool that can never connect."""
    aliases = [a for a in connections.settings if a.startswith("tdb_") and not a.endswith("__owner")]
    if not aliases:
        return
    from core import dbroles
    from tenants.databases import unregister_alias

    with dbroles.admin_connect() as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    for alias in aliases:
        if connections.settings[alias]["NAME"] not in existing:
            unregister_alias(alias)


def _sturdy_transactional_teardown() -> None:
    """Two changes to Django's TransactionTestCase teardown, which flushes (TRUNCATEs) every table.

    - A worker and beat that outlive one test (the module-scoped Celery harnesses) may be writing
      when the flush runs; PostgreSQL can then abort the TRUNCATE as a deadlock. That is the harness
      sharing the database, not the test failing: the flush is tried again.
    - Django takes its per-test database guards off (the wrappers that refuse aliases a test did not
      ask for, the patched ensure_connection) in class cleanups that never run when the teardown
      raises. One failed teardown then made every later test that used those aliases fail too
      ("Database queries to 'data' are not allowed"), burying the cause: the cleanups now run anyway.
    """
    import time

    from django.core.management.base import CommandError
    from django.test import TransactionTestCase
    from psycopg import errors

    # Private methods (django-stubs does not list them): read and replaced by name.
    flush = getattr(TransactionTestCase, "_fixture_teardown")  # noqa: B009
    teardown = getattr(TransactionTestCase, "_post_teardown")  # noqa: B009

    def _fixture_teardown(self) -> None:
        for attempt in range(4):
            try:
                return flush(self)
            except CommandError as exc:
                cause: BaseException | None = exc
                while cause is not None and not isinstance(cause, errors.DeadlockDetected):
                    cause = cause.__cause__
                if cause is None or attempt == 3:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def _post_teardown(self) -> None:
        try:
            teardown(self)
        except BaseException:
            type(self).doClassCleanups()
            raise

    setattr(TransactionTestCase, "_fixture_teardown", _fixture_teardown)  # noqa: B010
    setattr(TransactionTestCase, "_post_teardown", _post_teardown)  # noqa: B010


_sturdy_transactional_teardown()


def _is_transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return "transactional_db" in request.fixturenames or bool(marker and marker.kwargs.get("transaction"))
