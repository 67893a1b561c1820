"""Provisioning benchmark, one run, every number measured here against a baseline measured here.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_x .venv/bin/python bench/bench_provisioning.py \
        [--shared 30 --schema 20 --dedicated 10 --broker redis://127.0.0.1:6379/4]

Builds a private database `<db>_pbench` (control plane migrated), warms the template schema and
template database, starts a real Celery worker (solo pool) and beat against a private broker
(the given Redis db, else a filesystem folder), and measures:

1. End-to-end provisioning latency per isolation level through Celery: from the call that
   starts the saga to the tenant being `active` (observed by this process), p50/p95, next to
   the targets (shared ≤ 0.3 s, schema ≤ 1 s, dedicated ≤ 3 s p95).
2. A schema placement by cloning the pre-migrated template vs by running the TENANT_APPS
   migrations into an empty schema (our migration history), and django-tenants' stock path
   (`Client.create_schema()`: CREATE SCHEMA + migrate_schemas) in a subprocess on the same
   database.
3. A dedicated database by `CREATE DATABASE … TEMPLATE` with STRATEGY WAL_LOG vs FILE_COPY.
4. The shared placement step alone (`place_in_pool`: pick a pool with room, point the tenant at it)
   with 2 … 90 pools, every pool full but the last (the worst case of a first-fit scan), 100 tenants
   per pool: ours (kept count + one indexed, row-locked query) vs the previous algorithm (count the
   tenants of each pool in turn under one global lock), same rows, same run. `--pools-only` runs
   only this part (no Celery).

Drops everything it made.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
TARGETS = {"shared": 0.3, "schema": 1.0, "dedicated": 3.0}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def _summary(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:7.1f} ms   p95 {_pct(values, 95) * 1000:7.1f} ms   (n={len(values)})"


def _setup(broker: str) -> tuple[str, str]:
    from saas_admin.env import database_url

    base, _, name = database_url().rpartition("/")
    bench = f"{name.split('?')[0]}_pbench"
    os.environ["DATABASE_URL"] = f"{base}/{bench}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "saas_admin.settings.test"
    if broker:
        os.environ["SAGA_TEST_BROKER_URL"] = broker
    import django

    django.setup()
    from django.core.management import call_command

    from core import dbroles

    dbroles.ensure_database(bench, recreate=True)
    call_command("migrate", database="owner", interactive=False, verbosity=0)
    return f"{base}/{bench}", bench


def _drop(bench: str) -> None:
    from bench.harness import teardown  # after sys.path names the project

    teardown(bench)


def measure_end_to_end(harness, counts: dict[str, int]) -> dict[str, list[float]]:
    from core.actors import SystemActor
    from sagas.models import Saga
    from tenants.provisioning.services import tenant_provision

    results: dict[str, list[float]] = {}
    for isolation, n in counts.items():
        # One warm-up run per level (first connection to a new alias, imports in the worker).
        for i in range(n + 1):
            slug = f"b-{isolation[:2]}-{i}"
            t0 = time.perf_counter()
            saga = tenant_provision(
                slug=slug, isolation=isolation, owner_email=f"owner@{slug}.example", actor=SystemActor("bench")
            )
            while True:
                state = Saga.objects.filter(pk=saga.pk).values_list("state", flat=True).get()
                if state in ("completed", "compensated", "failed"):
                    break
                time.sleep(0.002)
            took = time.perf_counter() - t0
            if state != "completed":
                raise SystemExit(f"{slug}: saga ended {state}: {Saga.objects.get(pk=saga.pk).error}\n{harness.logs()}")
            if i:
                results.setdefault(isolation, []).append(took)
    return results


def measure_schema_paths(n: int) -> dict[str, list[float]]:
    from tenants import placements
    from tenants.models import Placement

    clone, migrate, check = [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        placements.template_schema_ensure()  # what every clone does first: is the template current?
        check.append(time.perf_counter() - t0)
    for i in range(n):
        name = f"bench_clone_{i}"
        t0 = time.perf_counter()
        placements.clone_template_schema(name)
        clone.append(time.perf_counter() - t0)
        placements.drop_schema(name)
        name = f"bench_migr_{i}"
        t0 = time.perf_counter()
        with placements.owner_connect(autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        placements.migrate_placement(Placement(kind="schema", database_alias="default", schema_name=name))
        migrate.append(time.perf_counter() - t0)
        placements.drop_schema(name)
    return {"clone": clone, "migrate": migrate, "check": check}


DT_SCRIPT = r"""
import json, sys, time
import django
django.setup()
from django.core.management import call_command
call_command("migrate_schemas", "--shared", verbosity=0)
from bench.dt_tenants.models import Client
times = []
for i in range(int(sys.argv[1])):
    client = Client(schema_name=f"dt_bench_{i}", name=f"dt {i}")
    client.save()
    t0 = time.perf_counter()
    client.create_schema(check_if_exists=True, verbosity=0)
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def measure_django_tenants(bench_url: str, n: int) -> list[float] | str:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.dt_settings",
        "BENCH_DATABASE_URL": bench_url,
        "PYTHONPATH": str(BASE_DIR),
    }
    proc = subprocess.run(
        [sys.executable, "-c", DT_SCRIPT, str(n)], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        return f"django-tenants baseline failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_database_strategies(n: int) -> dict[str, list[float]]:
    from psycopg import sql

    from core import dbroles
    from tenants import placements

    template = placements.template_database()
    out: dict[str, list[float]] = {"WAL_LOG": [], "FILE_COPY": []}
    with placements.owner_connect(autocommit=True) as conn:
        for i in range(n):
            for strategy in ("WAL_LOG", "FILE_COPY"):
                name = f"{placements.control_plane_db()}_strat_{strategy.lower()}_{i}"
                statement = sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY {}").format(
                    sql.Identifier(name), sql.Identifier(template), sql.SQL(strategy)
                )
                t0 = time.perf_counter()
                conn.execute(statement)
                out[strategy].append(time.perf_counter() - t0)
                dbroles.drop_database(name)
    return out


def _place_by_counting(tenant_id) -> None:
    """The previous algorithm (before issue 15), kept here as the baseline: count each pool in turn."""
    from django.db import connections, transaction

    from tenants.models import Placement, Tenant

    with transaction.atomic():
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [0x7E4A50])
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        for candidate in Placement.objects.filter(kind=Placement.Kind.POOL).order_by("id"):
            if candidate.tenants.count() < candidate.capacity:
                tenant.placement = candidate
                break
        tenant.save(update_fields=["placement", "updated_at"])


def measure_pool_choice(pool_counts: list[int], per_pool: int, samples: int) -> dict[int, dict[str, list[float]]]:
    import uuid

    from tenants.models import Placement, Tenant
    from tenants.provisioning.steps import place_in_pool

    out: dict[int, dict[str, list[float]]] = {}
    for n in pool_counts:
        Tenant.objects.all().delete()
        Placement.objects.all().delete()
        pools = Placement.objects.bulk_create(
            [Placement(kind=Placement.Kind.POOL, schema_name=f"bench_pool_{i}", capacity=per_pool) for i in range(n)]
        )
        fill = [
            Tenant(
                id=uuid.uuid4(), slug=f"full-{n}-{i}-{j}", name="x", isolation="shared", status="active", placement=p
            )
            for i, p in enumerate(pools[:-1])
            for j in range(per_pool)
        ]
        Tenant.objects.bulk_create(fill, batch_size=2000)
        with connections_cursor() as cursor:
            cursor.execute("ANALYZE tenants_tenant")
            cursor.execute("ANALYZE tenants_placement")
        out[n] = {}
        for label, place in (("ours", place_in_pool), ("counting", _place_by_counting)):
            times = []
            for k in range(samples):
                tenant = Tenant.objects.create(
                    id=uuid.uuid4(), slug=f"new-{label}-{n}-{k}", name="x", isolation="shared", status="provisioning"
                )
                t = time.perf_counter()
                place(tenant.pk)
                times.append(time.perf_counter() - t)
                Tenant.objects.filter(pk=tenant.pk).delete()  # keep the last pool open for the next sample
            out[n][label] = times
        assert Placement.objects.get(pk=pools[-1].pk).tenant_count == 0
    Tenant.objects.all().delete()
    Placement.objects.all().delete()
    return out


def connections_cursor():
    from django.db import connections

    return connections["owner"].cursor()


def report_pool_choice(results: dict[int, dict[str, list[float]]]) -> None:
    print("4. Shared placement step vs number of pools (all full but the last; p50 / p95)")
    for n, by in results.items():
        print(f"   {n:>3} pools   ours {_summary(by['ours'])}   previous (count each pool) {_summary(by['counting'])}")
    first, last = min(results), max(results)
    for label in ("ours", "counting"):
        a, b = statistics.median(results[first][label]), statistics.median(results[last][label])
        print(f"   → {label:<8} p50 at {last} pools ÷ at {first} pools = {b / a:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=int, default=30)
    parser.add_argument("--schema", type=int, default=20)
    parser.add_argument("--dedicated", type=int, default=10)
    parser.add_argument("--paths", type=int, default=10, help="runs per schema path and per database strategy")
    parser.add_argument(
        "--broker", default=os.environ.get("BENCH_BROKER_URL", ""), help="e.g. redis://127.0.0.1:6379/4"
    )
    parser.add_argument("--pools-only", action="store_true", help="only part 4 (shared placement vs pools)")
    parser.add_argument("--pool-samples", type=int, default=50)
    args = parser.parse_args()

    bench_url, bench = _setup(args.broker)
    harness = None
    try:
        if args.pools_only:
            report_pool_choice(measure_pool_choice([2, 10, 30, 90], per_pool=100, samples=args.pool_samples))
            return 0
        from tenants import placements
        from tests.support.sagas import CeleryHarness

        t0 = time.perf_counter()
        placements.template_schema_ensure()
        placements.template_database_ensure()
        print(f"database {bench}; templates warmed in {time.perf_counter() - t0:.2f} s")
        harness = CeleryHarness(
            extra_env={"JOBS_FAULT_INJECTION": "0", "SAGA_STEP_LEASE_SECONDS": "120", "JOBS_QUEUED_GRACE_SECONDS": "30"}
        ).start()
        print(f"broker: {harness.broker_url} · one solo-pool worker · {os.cpu_count()} CPUs\n")
        time.sleep(2)

        e2e = measure_end_to_end(harness, {"shared": args.shared, "schema": args.schema, "dedicated": args.dedicated})
        harness.stop()
        harness = None
        paths = measure_schema_paths(args.paths)
        dt = measure_django_tenants(bench_url, args.paths)
        strategies = measure_database_strategies(args.paths)

        print("1. End-to-end provisioning through Celery (start → tenant active)")
        for isolation, values in e2e.items():
            p95 = _pct(values, 95)
            verdict = "meets" if p95 <= TARGETS[isolation] else "MISSES"
            print(f"   {isolation:<10} {_summary(values)}   target p95 ≤ {TARGETS[isolation]:.1f} s: {verdict}")
        print("\n2. A schema placement (the placement step alone)")
        print(f"   clone template      {_summary(paths['clone'])}")
        print(f"   run migrations      {_summary(paths['migrate'])}")
        print(f"   (of the clone: template freshness check alone {_summary(paths['check'])})")
        ratio = statistics.median(paths["migrate"]) / statistics.median(paths["clone"])
        print(
            f"   → cloning is {ratio:.1f}× faster than migrating (median)"
            if ratio > 1
            else f"   → migrating is {1 / ratio:.1f}× faster than cloning (median)"
        )
        if isinstance(dt, list):
            print(f"   django-tenants create_schema (CREATE SCHEMA + migrate_schemas): {_summary(dt)}")
            print("     (its TENANT_APPS is `workspace` only, bench/dt_settings.py; ours also has events.tenantlog)")
            dt_p50 = statistics.median(dt)
            print(
                f"   → placement step: our clone p50 {statistics.median(paths['clone']) * 1000:.0f} ms vs django-tenants "
                f"{dt_p50 * 1000:.0f} ms ({dt_p50 / statistics.median(paths['clone']):.2f}×); our whole schema saga "
                f"(8 steps through Celery, tenant row, member, domain, events) p50 "
                f"{statistics.median(e2e['schema']) * 1000:.0f} ms"
            )
        else:
            print(f"   {dt}")
        print("\n3. A dedicated database: CREATE DATABASE … TEMPLATE")
        for strategy, values in strategies.items():
            print(f"   {strategy:<10} {_summary(values)}")
        ratio = statistics.median(strategies["WAL_LOG"]) / statistics.median(strategies["FILE_COPY"])
        faster = "FILE_COPY" if ratio > 1 else "WAL_LOG"
        print(f"   → {faster} is {max(ratio, 1 / ratio):.1f}× faster (median) for this template\n")
        report_pool_choice(measure_pool_choice([2, 10, 30, 90], per_pool=100, samples=args.pool_samples))
        return 0
    finally:
        if harness is not None:
            harness.stop()
        _drop(bench)


if __name__ == "__main__":
    sys.exit(main())
