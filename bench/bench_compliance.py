"""Compliance benchmark: every automated check over 1,000 placements, and the overview with a year of
hourly results.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_x .venv/bin/python bench/bench_compliance.py \
        [--placements 1000] [--dedicated 20] [--pools 10]

Builds a private bench database `<db>_cbench` (control plane migrated, both templates), then:
  (1) baseline: all 18 checks with no placement at all (control plane only), timed per check;
  (2) real placements cloned from the templates — pools, own schemas and `--dedicated` dedicated
      databases — each with an active tenant and its recorded migration state, and the same 18
      checks timed again. Prints the wall time per check and in total, the ratio to the baseline and
      the cost per placement;
  (3) a year of hourly evaluations (8,760 × 18 results and × 5 readiness snapshots, inserted in
      bulk) and the compliance home page rendered 20 times, p50/p95, against the same page with
      one day of results measured in the same run.
Pinned to BENCH_CORES (default "0,1") with taskset when it exists. Drops what it made.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
CORES = os.environ.get("BENCH_CORES", "0,1")


def _bench_url() -> tuple[str, str]:
    from saas_admin.env import database_url

    url = database_url()
    base, _, name = url.rpartition("/")
    bench = f"{name.split('?')[0]}_cbench"
    return f"{base}/{bench}", bench


def _drop(bench_db: str) -> None:
    from bench.harness import teardown  # after sys.path names the project

    teardown(bench_db)


def run_checks() -> tuple[float, dict[str, tuple[float, str]]]:
    from compliance.checks import registry

    per: dict[str, tuple[float, str]] = {}
    started = time.perf_counter()
    for name in registry.names():
        t0 = time.perf_counter()
        outcome = registry.get(name)()  # type: ignore[misc]
        per[name] = (time.perf_counter() - t0, outcome.status)
    return time.perf_counter() - started, per


def build(n: int, dedicated: int, pools: int) -> float:
    from django.utils import timezone

    from tenants import migration_state, placements
    from tenants.crypto import encrypt_json
    from tenants.models import Placement, Tenant

    t0 = time.perf_counter()
    made: list[Placement] = []
    for i in range(pools):
        placements.clone_template_schema(f"pool_b{i:03d}")
        made.append(Placement.objects.using("owner").create(kind="pool", schema_name=f"pool_b{i:03d}", capacity=100))
    for i in range(n - pools - dedicated):
        schema = f"t_cb_{i:05d}"
        placements.clone_template_schema(schema)
        made.append(Placement.objects.using("owner").create(kind="schema", schema_name=schema))
    for i in range(dedicated):
        name = placements.dedicated_database_name(f"cb{i}")
        creds = {
            "owner_user": f"{name}_o"[:63],
            "app_user": f"{name}_a"[:63],
            "owner_password": "x",
            "app_password": "x",
        }
        owner_role, app_role = placements.dedicated_roles(name)
        creds.update(owner_user=owner_role, app_user=app_role)
        placements.create_dedicated_database(name, credentials=creds)
        made.append(
            Placement.objects.using("owner").create(
                kind="database", database_alias=f"tdb_cb{i}", schema_name="public", db_name=name,
                credentials_encrypted=encrypt_json(creds),
            )
        )  # fmt: skip
    tenants = [
        Tenant(slug=f"cb-{p.pk}", name=f"Bench {p.pk}", isolation={"pool": "shared", "schema": "schema"}.get(p.kind, "dedicated"),
               status="active", placement=p, status_changed_at=timezone.now())
        for p in made
    ]  # fmt: skip
    Tenant.objects.using("owner").bulk_create(tenants)
    for p in made:
        migration_state.placement_state_refresh(p)
    return time.perf_counter() - t0


def year_of_results(hours: int) -> float:
    from django.utils import timezone

    from compliance import library
    from compliance.models import Control, Evaluation, Framework, FrameworkSnapshot, Result
    from core.actors import SystemActor

    lib = library.library_ensure(actor=SystemActor("bench"))
    controls = list(Control.objects.exclude(check_name=""))
    frameworks = list(Framework.objects.filter(library=lib))
    now = timezone.now()
    t0 = time.perf_counter()
    for start in range(0, hours, 500):
        batch = []
        for h in range(start, min(hours, start + 500)):
            at = now - timedelta(hours=hours - h)
            batch.append(Evaluation(library=lib, requested_by="bench", started_at=at, finished_at=at))
        evaluations = Evaluation.objects.using("owner").bulk_create(batch)
        results, snaps = [], []
        for e in evaluations:
            for i, c in enumerate(controls):
                status = "fail" if (i + e.started_at.hour) % 7 == 0 else "pass"
                results.append(Result(evaluation_id=e.pk, control_id=c.pk, check_name=c.check_name, status=status, summary="bench",
                                      evidence={"n": i}, evidence_sha256="0" * 64, duration_ms=3, evaluated_at=e.started_at))  # fmt: skip
            for f in frameworks:
                snaps.append(FrameworkSnapshot(evaluation_id=e.pk, framework_id=f.pk, taken_at=e.started_at, applicable=40,
                                               satisfied=20 + e.started_at.hour % 10, counts={}))  # fmt: skip
        Result.objects.using("owner").bulk_create(results, batch_size=5000)
        FrameworkSnapshot.objects.using("owner").bulk_create(snaps, batch_size=5000)
    with __import__("django.db", fromlist=["connections"]).connections["owner"].cursor() as cursor:
        cursor.execute("ANALYZE compliance_result; ANALYZE compliance_frameworksnapshot; ANALYZE compliance_evaluation")
    return time.perf_counter() - t0


def page_times(client, repeat: int = 20) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get("/compliance/")
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.status_code
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--placements", type=int, default=1000)
    parser.add_argument("--dedicated", type=int, default=20)
    parser.add_argument("--pools", type=int, default=10)
    parser.add_argument("--hours", type=int, default=24 * 365)
    args = parser.parse_args()
    if shutil.which("taskset") and not os.environ.get("BENCH_PINNED"):
        os.environ["BENCH_PINNED"] = "1"
        os.execvp("taskset", ["taskset", "-c", CORES, sys.executable, *sys.argv])
    bench_url, bench_db = _bench_url()
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas_admin.settings.development")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from core import dbroles
    from tenants import placements

    settings.ALLOWED_HOSTS = ["*"]
    _drop(bench_db)
    try:
        dbroles.bootstrap()
        call_command("migrate", database="owner", interactive=False, verbosity=0)
        placements.templates_rebuild()
        run_checks()  # warm: imports, Django's deploy checks, connections
        base_total, base = run_checks()
        built = build(args.placements, args.dedicated, args.pools)
        total, per = run_checks()
        print(f"bench database {bench_db}: {args.placements} placements ({args.pools} pools, "
              f"{args.placements - args.pools - args.dedicated} schemas, {args.dedicated} dedicated databases), "
              f"one active tenant each; built in {built:.0f} s; pinned to cores {CORES}")  # fmt: skip
        print(f"{'check':22} {'baseline s':>10} {'1k s':>8} {'status':>7}")
        for name in sorted(per, key=lambda n: -per[n][0]):
            print(f"{name:22} {base[name][0]:10.3f} {per[name][0]:8.3f} {per[name][1]:>7}")
        print(f"all checks: baseline {base_total:.2f} s, with {args.placements} placements {total:.2f} s "
              f"(×{total / base_total:.1f}); {1000 * (total - base_total) / args.placements:.1f} ms per placement; "
              f"target ≤ 60 s")  # fmt: skip

        from django.contrib.auth.models import Group, User

        admin = User.objects.db_manager("owner").create_user("bench_admin", is_staff=True)
        admin.groups.add(Group.objects.using("owner").get(name="Admin"))
        device = TOTPDevice.objects.using("owner").create(user=admin, name="bench", confirmed=True)
        client = Client()
        client.force_login(admin)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        year_of_results(24)
        day_p50, day_p95 = page_times(client)
        inserted = year_of_results(args.hours - 24)
        year_p50, year_p95 = page_times(client)
        if os.environ.get("BENCH_PROFILE"):
            from django.db import connection
            from django.test.utils import CaptureQueriesContext

            with CaptureQueriesContext(connection) as queries:
                t0 = time.perf_counter()
                client.get("/compliance/")
                total_ms = (time.perf_counter() - t0) * 1000
            slow = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:6]
            print(f"profile: {len(queries)} queries, {total_ms:.0f} ms in all")
            for q in slow:
                print(f"  {float(q['time']) * 1000:6.1f} ms  {q['sql'][:160]}")
        print(f"compliance home: one day of hourly results p50 {day_p50:.0f} ms p95 {day_p95:.0f} ms; "
              f"{args.hours // 24} days ({args.hours} evaluations, {args.hours * 18:,} results; inserted in {inserted:.0f} s) "
              f"p50 {year_p50:.0f} ms p95 {year_p95:.0f} ms (×{year_p50 / day_p50:.2f}); target ≤ 200 ms")  # fmt: skip
    finally:
        _drop(bench_db)


if __name__ == "__main__":
    main()
