"""Usage benchmark: collection over many tenants, and the request overhead of per-tenant latency recording.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_x .venv/bin/python bench/bench_usage.py [--tenants 5000]

Builds a private database `<db>_ubench` (control plane migrated, templates), provisions one real
tenant of each isolation level through the provisioning saga (with ledger events), then adds
`--tenants` shared tenants as rows in one pool placement, each with MEMBERS members written under
its own RLS setting (what provisioning + signups would leave; the saga itself is benchmarked in
bench_provisioning.py). Then prints:

1. One full collection (`usage.collection.collect`) over every tenant: seconds, and ms per tenant.
   Target: ≤ 30 s for 5,000 tenants on 2 cores. Then a second run (nothing changed), which shows
   that cost does not grow with the rollup history.
2. Requests/s of the signed-in workspace members page with latency recording on vs off, and with
   the per-tenant rate limit on (a plan with a requests-per-minute quota) vs off. Variants are
   interleaved in rounds; medians over rounds. Target: recording overhead ≤ 3 %.
Drops what it made.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas_admin.settings.development")
os.environ["DJANGO_DEBUG"] = "0"

MEMBERS = 3
PASSWORD = "bench-member-password-1"


def setup_database() -> str:
    from bench.harness import setup_database as fresh_database  # after sys.path names the project

    return fresh_database("_ubench")


def make_tenants(count: int) -> dict:
    import uuid

    import psycopg
    from django.db import connections

    from core import dbroles
    from tenants.context import tenant_context
    from tenants.models import Tenant
    from tests.support.tenancy import provision
    from workspace import ledger, services
    from workspace.models import Account

    real = {}
    for isolation in ("shared", "schema", "dedicated"):
        tenant = provision(isolation, f"bench-{isolation}", plan="enterprise")
        with tenant_context(tenant) as alias:
            owner = services.member_create(name="Owner", email=f"owner@{tenant.slug}.test", password=PASSWORD)
            assert owner.pk
            services.account_open(name="Cash")
            account = Account.objects.using(alias).get()
            for _ in range(20):
                ledger.ledger_deposit(account_id=account.pk, amount="1.00")
        real[isolation] = tenant
    pool = real["shared"].placement
    rows = [
        Tenant(id=uuid.uuid4(), slug=f"b{i:05d}", name=f"Bench {i}", isolation="shared", status="active",
               plan="free", placement=pool)
        for i in range(count)
    ]  # fmt: skip
    Tenant.objects.bulk_create(rows, batch_size=1000)
    schema = pool.schema_name
    with psycopg.connect(**dbroles.conninfo(connections.settings["owner"]), autocommit=True) as conn:
        for tenant in rows:
            with conn.transaction():
                conn.execute(
                    "SELECT set_config('app.current_tenant_id', %s, true), set_config('search_path', %s, true)",
                    [str(tenant.pk), f"{schema}, public"],
                )
                conn.execute(
                    "INSERT INTO workspace_member (tenant_id, name, email, password, is_admin, is_active, created_at) "
                    "SELECT %s, 'Person ' || g, 'p' || g || '@x.test', '', false, true, now() "
                    "FROM generate_series(1, %s) g",
                    [str(tenant.pk), MEMBERS],
                )
    return real


def measure_collection() -> tuple[float, float, int]:
    from usage import collection
    from usage.models import UsageHourly

    start = time.perf_counter()
    first = collection.collect()
    first_s = time.perf_counter() - start
    assert first.failed == 0, first
    start = time.perf_counter()
    collection.collect()
    second_s = time.perf_counter() - start
    assert UsageHourly.objects.count() >= first.tenants
    return first_s, second_s, first.tenants


def signed_in_client(tenant):
    from django.test import Client

    client = Client(HTTP_HOST=f"{tenant.slug}.localhost")
    response = client.post("/login/", {"email": f"owner@{tenant.slug}.test", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    return client


def measure_requests(tenant, requests: int, rounds: int = 10) -> dict[str, float]:
    from django.conf import settings

    from tenants.models import Tenant
    from tenants.selectors import host_cache_clear

    client = signed_in_client(tenant)
    assert b"Owner" in client.get("/members/").content
    quotas = settings.USAGE_PLAN_QUOTAS
    limited = {**quotas, "enterprise": {**quotas["enterprise"], "requests_per_minute": 10**9}}

    def variant(recording: bool, limit: bool) -> None:
        settings.USAGE_REQUEST_RECORDING = recording
        settings.USAGE_PLAN_QUOTAS = limited if limit else quotas

    variants = {
        "recording off, no rate limit": (False, False),
        "recording on, no rate limit": (True, False),
        "recording on, rate limit on": (True, True),
    }
    Tenant.objects.filter(pk=tenant.pk).update(plan="enterprise")
    host_cache_clear()
    rates: dict[str, list[float]] = {name: [] for name in variants}
    per_round = max(1, requests // rounds)
    for _ in range(rounds):
        for name, flags in variants.items():
            variant(*flags)
            client.get("/members/")
            start = time.perf_counter()
            for _ in range(per_round):
                client.get("/members/")
            rates[name].append(per_round / (time.perf_counter() - start))
    variant(True, False)
    return {name: statistics.median(values) for name, values in rates.items()}


def measure_record_cost(calls: int = 200_000) -> tuple[float, float]:
    """µs per `requestmeter.record` (the only work on the request path; flushes excluded) and ms per flush."""
    from django.conf import settings

    from core import requestmeter

    settings.USAGE_FLUSH_SECONDS = 10**9
    requestmeter.reset_for_tests()
    tenants = [f"t{i}" for i in range(100)]
    start = time.perf_counter()
    for i in range(calls):
        requestmeter.record(tenants[i % 100], float(i % 700))
    per_call = (time.perf_counter() - start) / calls
    start = time.perf_counter()
    requestmeter.flush()
    return per_call * 1e6, (time.perf_counter() - start) * 1000


def teardown(bench: str) -> None:
    from bench.harness import teardown as drop_bench  # after sys.path names the project

    drop_bench(bench)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=5000, help="shared tenants added as rows")
    parser.add_argument("--requests", type=int, default=1000, help="requests per variant")
    args = parser.parse_args()
    bench = setup_database()
    try:
        print(f"bench database {bench}: 3 provisioned tenants + {args.tenants} pool tenants ({MEMBERS} members each)")
        tenants = make_tenants(args.tenants)
        first, second, total = measure_collection()
        print(f"\n1. Usage collection over {total} tenants (one process)")
        print(f"   first run    {first:7.2f} s   {1000 * first / total:6.2f} ms per tenant   target ≤ 30 s")
        print(
            f"   second run   {second:7.2f} s   {1000 * second / total:6.2f} ms per tenant   (ratio {second / first:.2f})"
        )
        rates = measure_requests(tenants["shared"], args.requests)
        base = rates["recording off, no rate limit"]
        print(f"\n2. Workspace members page, requests/s ({args.requests} per variant, in-process WSGI, signed in)")
        for name, rate in rates.items():
            print(f"   {name:32s} {rate:8.1f} req/s   {rate / base:.3f}  overhead {100 * (base / rate - 1):+.1f}%")
        per_call_us, flush_ms = measure_record_cost()
        request_us = 1e6 / base
        print("\n3. The recording itself (what the middleware adds per request; a flush at most every 2 s)")
        print(
            f"   record()  {per_call_us:6.2f} µs per request = {100 * per_call_us / request_us:.3f} % of a {request_us / 1000:.1f} ms request"
        )
        print(f"   flush()   {flush_ms:6.2f} ms for 100 tenants' hour (one cache write), ≤ 1 per 2 s per process")
    finally:
        teardown(bench)
    return 0


if __name__ == "__main__":
    sys.exit(main())
