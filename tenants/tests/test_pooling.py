"""Tenant context on reused connections: psycopg pool, persistent connections, PgBouncer.

Many threads interleave tenants on a few physical connections. Every unit of
work must see only its tenant's rows, must find the connection clean when it
checks it out (no GUC, default search_path), and must leave it clean.
"""

from __future__ import annotations

import copy
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import DataError, ProgrammingError, connections, transaction
from psycopg import pq

from tenants.context import applied, current_settings, tenant_context
from workspace.models import Member

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])

THREADS, ROUNDS = 4, 20


@pytest.fixture
def tenants(make_tenant):
    return [make_tenant("shared"), make_tenant("shared"), make_tenant("schema"), make_tenant("dedicated")]


@pytest.fixture
def cp_tenants(make_tenant):
    """Tenants in the control-plane database (the connections under test are the control plane's)."""
    return [make_tenant("shared"), make_tenant("shared"), make_tenant("schema")]


@pytest.fixture
def two_tenants(make_tenant):
    return [make_tenant("shared"), make_tenant("schema")]


def default_search_path() -> str:
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT reset_val FROM pg_settings WHERE name = 'search_path'")
        return cursor.fetchone()[0]


def interleave(work, tenants) -> dict[int, set]:
    """Run `work(tenant)` THREADS×ROUNDS times in random tenant order; returns backend pid → tenants served."""
    served: dict[int, set] = defaultdict(set)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(ROUNDS):
                tenant = rng.choice(tenants)
                pid = work(tenant)
                served[pid].add(tenant.slug)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(worker, seed) for seed in range(THREADS)]:
            future.result()
    return served


def check_unit(alias: str, tenant, enter) -> int:
    """One unit of work on `alias`: clean on checkout, only the tenant's rows inside, clean after."""
    conn = connections[alias]
    assert current_settings(alias) == (None, default_search_path()), "a connection arrived carrying a tenant"
    with enter(tenant) as used:
        assert used == alias
        emails = list(Member.objects.using(alias).values_list("email", flat=True))
        assert emails and all(e.endswith(f"@{tenant.slug}.test") for e in emails), (tenant.slug, emails)
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
    assert current_settings(alias) == (None, default_search_path()), "the tenant context outlived its use"
    conn.close()  # back to the pool (or, for persistent connections, kept — see below)
    return pid


def test_the_psycopg_pool_never_carries_a_tenant_into_the_next_checkout(tenants):
    assert connections["default"].settings_dict["OPTIONS"].get("pool"), "the default alias uses the psycopg pool"

    def work(tenant):
        alias = tenant.placement.database_alias
        return check_unit(alias, tenant, tenant_context)

    served = interleave(work, tenants)
    assert any(len(slugs) > 1 for slugs in served.values()), "connections were reused across tenants"


def _register_like_default(alias: str, **changes) -> None:
    config = copy.deepcopy(connections.settings["default"])
    options = dict(config.get("OPTIONS") or {})
    options.pop("pool", None)
    options.update(changes.pop("OPTIONS", {}))
    config.update(OPTIONS=options, **changes)
    connections.settings[alias] = config


def _drop_alias(alias: str) -> None:
    connections[alias].close()
    del connections[alias]
    connections.settings.pop(alias, None)


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
def test_persistent_connections_never_carry_a_tenant_into_the_next_unit_of_work(cp_tenants, autocommit):
    # CONN_MAX_AGE=None and no pool: each thread keeps one physical connection for all its rounds,
    # so tenants interleave on the same session.
    _register_like_default("probe_persistent", CONN_MAX_AGE=None)
    try:
        served = interleave(lambda tenant: _unit_on("probe_persistent", tenant, autocommit), cp_tenants)
        assert len(served) <= THREADS and any(len(slugs) > 1 for slugs in served.values())
    finally:
        _drop_alias("probe_persistent")


def _unit_on(alias: str, tenant, autocommit: bool = False) -> int:
    """Like check_unit, on a connection that stays open between units; `autocommit`: the read-only
    mode of tenant-host GET requests, each statement carrying the settings in its own transaction."""
    # Outside a transaction (and, under PgBouncer, on whichever server connection) it must be clean.
    assert current_settings(alias) == (None, default_search_path()), "a connection arrived carrying a tenant"
    with applied(alias, tenant_id=tenant.pk, schema_name=tenant.placement.schema_name, autocommit=autocommit):
        assert not connections[alias].in_atomic_block or not autocommit
        emails = list(Member.objects.using(alias).values_list("email", flat=True))
        assert emails and all(e.endswith(f"@{tenant.slug}.test") for e in emails), (tenant.slug, emails)
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
    assert current_settings(alias) == (None, default_search_path()), "the tenant context outlived its use"
    return pid


def test_a_nested_tenant_context_restores_the_outer_settings(two_tenants):
    a, b = two_tenants
    with transaction.atomic():
        before = current_settings("default")
        with tenant_context(a):
            assert current_settings("default")[0] == str(a.pk)
            with tenant_context(b):
                assert current_settings("default") == (str(b.pk), f'"{b.placement.schema_name}", "public", pg_temp')
                assert {m.tenant_id for m in Member.objects.all()} == {b.pk}
            assert current_settings("default")[0] == str(a.pk)
            assert {m.tenant_id for m in Member.objects.all()} == {a.pk}
        assert current_settings("default") == before


def test_an_error_inside_a_tenant_context_leaves_nothing_behind(two_tenants):
    tenant = two_tenants[0]
    with pytest.raises(RuntimeError), tenant_context(tenant):
        Member.objects.create(name="Half done", email=f"half@{tenant.slug}.test")
        raise RuntimeError("boom")
    assert current_settings("default") == (None, default_search_path())
    with tenant_context(tenant):
        assert not Member.objects.filter(email=f"half@{tenant.slug}.test").exists()


def test_the_settings_sent_with_the_first_statement_survive_its_savepoint_rollback(two_tenants):
    # The first statement here is the SAVEPOINT: BEGIN, the settings and it go in one round trip, and
    # rolling back to the savepoint must not undo the settings that came before it.
    tenant = two_tenants[0]
    with tenant_context(tenant) as alias:
        with pytest.raises(DataError), transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
        assert current_settings(alias)[0] == str(tenant.pk)
        assert {m.tenant_id for m in Member.objects.using(alias)} == {tenant.pk}
    assert current_settings("default") == (None, default_search_path())


def test_a_failing_first_query_raises_djangos_error_and_leaves_nothing_behind(two_tenants):
    tenant = two_tenants[0]
    with pytest.raises(ProgrammingError), tenant_context(tenant) as alias, connections[alias].cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_here")
    assert current_settings("default") == (None, default_search_path())
    with tenant_context(tenant) as alias:
        assert current_settings(alias)[0] == str(tenant.pk)


def test_in_autocommit_every_statement_carries_the_tenant_and_nothing_stays_open(two_tenants):
    a, b = two_tenants
    with tenant_context(a, autocommit=True) as alias:
        assert not connections[alias].in_atomic_block
        assert {m.tenant_id for m in Member.objects.using(alias)} == {a.pk}
        with tenant_context(b) as inner:  # a nested unit with its own transaction: the inner tenant wins
            assert inner == alias and {m.tenant_id for m in Member.objects.using(alias)} == {b.pk}
        assert current_settings(alias)[0] == str(a.pk)  # back to the outer tenant, statement by statement
        # Between statements no transaction is open on the server (no BEGIN was sent, none to COMMIT).
        assert connections[alias].connection.pgconn.transaction_status == pq.TransactionStatus.IDLE
    assert current_settings("default") == (None, default_search_path())


# --- PgBouncer in transaction pooling mode ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pgbouncer():
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)
    if binary is None:
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    server = connections.settings["default"]
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="pgbouncer-")
    users = f'"{server["USER"]}" "{server.get("PASSWORD") or ""}"\n'
    with open(os.path.join(workdir, "users.txt"), "w") as f:
        f.write(users)
    host = server.get("HOST") or "127.0.0.1"
    with open(os.path.join(workdir, "pgbouncer.ini"), "w") as f:
        f.write(
            "[databases]\n"
            f"* = host={host} port={server.get('PORT') or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = {'trust' if not server.get('PASSWORD') else 'plain'}\n"
            f"auth_file = {workdir}/users.txt\n"
            "pool_mode = transaction\ndefault_pool_size = 2\nmax_client_conn = 50\n"
            "server_reset_query =\nignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {workdir}/pgbouncer.log\npidfile = {workdir}/pgbouncer.pid\n"
        )
    command = [binary, os.path.join(workdir, "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root; let it drop to an unprivileged user
        os.chmod(workdir, 0o777)
        for name in ("users.txt", "pgbouncer.ini"):
            os.chmod(os.path.join(workdir, name), 0o644)
        command[1:1] = ["-u", "nobody"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
def test_under_pgbouncer_transaction_pooling_tenants_never_leak(cp_tenants, pgbouncer, autocommit):
    # Server-side prepared statements don't survive transaction pooling: psycopg must not prepare.
    _register_like_default(
        "probe_bouncer", HOST="127.0.0.1", PORT=str(pgbouncer), CONN_MAX_AGE=None, OPTIONS={"prepare_threshold": None}
    )
    try:
        served = interleave(lambda tenant: _unit_on("probe_bouncer", tenant, autocommit), cp_tenants)
        # 4 client threads share 2 server connections, so server connections switched tenants.
        assert len(served) <= 2 and any(len(slugs) > 1 for slugs in served.values())
    finally:
        _drop_alias("probe_bouncer")
