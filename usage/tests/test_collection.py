"""Usage collection against an independent oracle, for every isolation level, on real PostgreSQL.

Tenants are provisioned for real and committed (transactional tests): the collector reads the event
log through its gap-safe order, which only hands out committed events. Every figure is checked
against counts this test computes itself — the ORM under the tenant's RLS, the catalog's sizes —
never against the collector's own queries.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from core import dbroles, requestmeter
from events.tenantlog.models import TenantEvent
from tenants.context import tenant_context
from usage import collection
from usage.models import UsageDaily, UsageHourly, UsageState
from workspace import ledger
from workspace.models import Account, Member, MemberSession

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def deposit(tenant, times: int) -> None:
    with tenant_context(tenant) as alias:
        account = Account.objects.using(alias).order_by("pk").first()
        assert account is not None
        for _ in range(times):
            ledger.ledger_deposit(account_id=account.pk, amount="1.00")


def oracle(tenant) -> dict:
    """What the tenant holds, counted independently under its own RLS."""
    with tenant_context(tenant) as alias:
        return {
            "members": Member.objects.using(alias).count(),
            "accounts": Account.objects.using(alias).count(),
            "sessions": MemberSession.objects.using(alias).count(),
            "events": TenantEvent.objects.using(alias).count(),
        }


def catalog_size(schema: str) -> int:
    with connections["default"].cursor() as c:
        c.execute(
            "SELECT coalesce(sum(pg_total_relation_size(format('%%I.%%I', schemaname, tablename)::regclass)), 0) "
            "FROM pg_tables WHERE schemaname = %s",
            [schema],
        )
        return int(c.fetchone()[0])


def test_it_counts_every_isolation_level_like_an_independent_count(make_tenant):
    tenants = {iso: make_tenant(iso) for iso in ("shared", "schema", "dedicated")}
    neighbour = make_tenant("shared")
    deposit(tenants["shared"], 3)
    deposit(tenants["schema"], 5)
    deposit(tenants["dedicated"], 2)
    deposit(neighbour, 7)
    everyone = [*tenants.values(), neighbour]

    outcome = collection.collect(tenant_ids=[t.pk for t in everyone])

    assert outcome.written == 4 and outcome.failed == 0
    for tenant in everyone:
        expected = oracle(tenant)
        state = UsageState.objects.get(tenant=tenant)
        assert state.members == expected["members"]
        assert state.events_total == expected["events"] > 0
        hour = UsageHourly.objects.get(tenant=tenant, hour=timezone.now().replace(minute=0, second=0, microsecond=0))
        assert hour.rows["workspace_member"] == expected["members"]
        assert hour.rows["workspace_account"] == expected["accounts"]
        assert hour.rows["tenantlog_event"] == expected["events"]
        assert hour.events_appended == expected["events"]
        assert UsageDaily.objects.get(tenant=tenant, day=timezone.now().date()).events_total == expected["events"]

    schema_tenant = tenants["schema"]
    state = UsageState.objects.get(tenant=schema_tenant)
    assert not state.storage_estimated
    assert state.storage_bytes == catalog_size(schema_tenant.placement.schema_name)

    dedicated = tenants["dedicated"]
    state = UsageState.objects.get(tenant=dedicated)
    with dbroles.admin_connect() as admin:  # the bootstrap user: the app role may not connect to it
        size = int(admin.execute("SELECT pg_database_size(%s)", [dedicated.placement.db_name]).fetchone()[0])
    assert not state.storage_estimated
    assert abs(state.storage_bytes - size) <= 64 * 1024  # the same database, measured twice

    pool = tenants["shared"].placement
    assert neighbour.placement_id == pool.pk  # both in one pool: the estimate splits its tables
    shares = [UsageState.objects.get(tenant=t) for t in (tenants["shared"], neighbour)]
    assert all(s.storage_estimated and s.storage_bytes > 0 for s in shares)
    assert sum(s.storage_bytes for s in shares) <= catalog_size(pool.schema_name)
    # More events, more of the shared event table: the busier neighbour is estimated larger.
    assert shares[1].storage_bytes > shares[0].storage_bytes


def test_it_counts_only_new_events_and_a_rerun_changes_nothing(make_tenant):
    tenant = make_tenant("schema")
    deposit(tenant, 2)
    collection.collect(tenant_ids=[tenant.pk])
    first = oracle(tenant)["events"]

    deposit(tenant, 4)
    collection.collect(tenant_ids=[tenant.pk])
    collection.collect(tenant_ids=[tenant.pk])  # nothing new: the same figures

    state = UsageState.objects.get(tenant=tenant)
    assert state.events_total == oracle(tenant)["events"] == first + 4
    assert sum(UsageHourly.objects.filter(tenant=tenant).values_list("events_appended", flat=True)) == first + 4
    today = UsageDaily.objects.get(tenant=tenant, day=timezone.now().date())
    assert today.events_appended == first + 4


def test_requests_on_the_tenant_host_are_counted_with_their_latency(make_tenant, settings):
    settings.USAGE_FLUSH_SECONDS = 3600.0  # flushed by the test, not by time
    requestmeter.reset_for_tests()
    tenant = make_tenant("shared")
    other = make_tenant("schema")
    client = Client(HTTP_HOST=f"{tenant.slug}.localhost")
    for _ in range(6):
        assert client.get("/login/").status_code == 200
    Client(HTTP_HOST=f"{other.slug}.localhost").get("/login/")
    requestmeter.flush()

    collection.collect(tenant_ids=[tenant.pk, other.pk])

    hour = UsageHourly.objects.get(tenant=tenant, hour=timezone.now().replace(minute=0, second=0, microsecond=0))
    assert hour.requests == 6
    assert sum(hour.latency_buckets) == 6
    assert hour.p50_ms is not None and 0 < hour.p50_ms <= hour.p95_ms
    assert UsageHourly.objects.get(tenant=other, hour=hour.hour).requests == 1
    state = UsageState.objects.get(tenant=tenant)
    assert state.requests_24h == 6
    assert state.last_activity_at is not None and timezone.now() - state.last_activity_at < dt.timedelta(minutes=5)


def test_a_second_process_keeps_its_own_slot(settings):
    """Two processes (two buffers) recording the same tenant: the hour's figures are their sum."""
    settings.USAGE_FLUSH_SECONDS = 3600.0
    requestmeter.reset_for_tests()
    now = timezone.now().timestamp()
    for _ in range(3):
        requestmeter.record("t-1", 12.0, now=now)
    requestmeter.flush()
    requestmeter.reset_for_tests()  # as if another worker process
    requestmeter.record("t-1", 700.0, now=now)
    requestmeter.flush()
    requestmeter.flush()  # flushing twice writes the same totals

    figures = requestmeter.read_hour(int(now // 3600))["t-1"]
    assert figures["requests"] == 4
    assert figures["buckets"][requestmeter.bucket_of(12.0)] == 3
    assert figures["buckets"][requestmeter.bucket_of(700.0)] == 1
    assert requestmeter.percentile(figures["buckets"], 0.5) <= 25 < requestmeter.percentile(figures["buckets"], 0.95)


def test_a_run_that_dies_between_chunks_is_finished_by_the_next_with_the_same_totals(make_tenant, monkeypatch):
    tenants = [make_tenant("shared"), make_tenant("schema"), make_tenant("shared")]
    for tenant in tenants:
        deposit(tenant, 2)
    monkeypatch.setattr(collection, "CHUNK", 1)
    real_write = collection._write_chunk
    calls = {"n": 0}

    def dies_after_the_first_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(collection, "_write_chunk", dies_after_the_first_chunk)
    with pytest.raises(RuntimeError):
        collection.collect(tenant_ids=[t.pk for t in tenants])
    assert UsageState.objects.filter(collected_at__isnull=False).count() == 1  # one chunk committed

    collection.collect(tenant_ids=[t.pk for t in tenants])  # the retry
    for tenant in tenants:
        state = UsageState.objects.get(tenant=tenant)
        assert state.events_total == oracle(tenant)["events"]
        assert state.members == oracle(tenant)["members"]
        assert (
            sum(UsageHourly.objects.filter(tenant=tenant).values_list("events_appended", flat=True))
            == (oracle(tenant)["events"])
        )


def test_the_collect_job_runs_on_the_engine_and_an_unreadable_tenant_stops_no_one(make_tenant, monkeypatch):
    from django.db import DatabaseError

    from jobs.services import job_execute
    from usage import jobs

    good, bad = make_tenant("schema"), make_tenant("shared")
    real_read = collection.read_tenant

    def broken_batch(*args, **kwargs):
        raise DatabaseError("pool unreachable")

    def read_or_fail(tenant, *args, **kwargs):
        if tenant.pk == bad.pk:
            raise DatabaseError("relation does not exist")
        return real_read(tenant, *args, **kwargs)

    monkeypatch.setattr(collection, "read_many", broken_batch)
    monkeypatch.setattr(collection, "read_tenant", read_or_fail)
    job = jobs.collection_start(actor=jobs.SCHEDULE)
    assert job_execute(job_id=job.pk, heartbeat=False) == "succeeded"
    job.refresh_from_db()
    assert job.result["unreachable"] == 1 and job.result["written"] >= 1
    assert UsageState.objects.get(tenant=good).members == oracle(good)["members"]
    assert "does not exist" in UsageState.objects.get(tenant=bad).error

    monkeypatch.setattr(collection, "read_tenant", real_read)
    job_execute(job_id=jobs.collection_start(actor=jobs.SCHEDULE).pk, heartbeat=False)
    assert UsageState.objects.get(tenant=bad).error == ""
