"""Cross-tenant migration benchmark: our run (migrate_tenants + a real Celery worker) vs
django-tenants' `migrate_schemas` with its standard and multiprocessing executors, measured in
the same run on the same database and schemas.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_x .venv/bin/python bench/bench_migrations.py [--schemas 300]

Builds a private bench database `<db>_mbench` (control plane migrated, template schema and
database), N schema placements cloned from the template, 2 pools and 2 dedicated databases, and
lists the pools and schemas in django-tenants' tenant table. Then:
  (a) nothing pending: each tool checks everything and applies nothing;
  (b) one trivial migration (COMMENT ON TABLE) pending everywhere: each tool applies it; between
      tools the bench resets it with plain SQL, and verifies every placement recorded it.
Everything runs pinned to 2 CPU cores (taskset) with 2 worker processes on each side. Prints wall
times, ratios vs the standard executor and the cost per placement; drops what it made.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
TRIVIAL = "9002_bench_trivial_comment"
CORES = os.environ.get("BENCH_CORES", "0,1")


def _bench_url() -> tuple[str, str]:
    from saas_admin.env import database_url

    url = database_url()
    base, _, name = url.rpartition("/")
    bench = f"{name.split('?')[0]}_mbench"
    return f"{base}/{bench}", bench


def _pinned(cmd: list[str]) -> list[str]:
    return (["taskset", "-c", CORES] if shutil.which("taskset") else []) + cmd


def _trivial_package(root: Path) -> str:
    from django.db.migrations.loader import MigrationLoader

    leaf = MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes("workspace")[0][1]
    module = "bench_workspace_migrations"
    shutil.copytree(BASE_DIR / "workspace" / "migrations", root / module, ignore=shutil.ignore_patterns("__pycache__"))
    (root / module / f"{TRIVIAL}.py").write_text(
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [('workspace', {leaf!r})]\n"
        "    operations = [migrations.RunSQL(\"COMMENT ON TABLE workspace_member IS 'bench'\", "
        "reverse_sql='COMMENT ON TABLE workspace_member IS NULL')]\n"
    )
    return module


def setup(n_schemas: int) -> dict:
    import django
    from django.core.management import call_command

    from core import dbroles

    django.setup()
    from tenants import placements
    from tenants.crypto import encrypt_json
    from tenants.models import Placement

    _drop(connections_name(), quiet=True)  # a previous --keep run
    dbroles.bootstrap()
    call_command("migrate", database="owner", interactive=False, verbosity=0)
    placements.templates_rebuild()
    t0 = time.perf_counter()
    for i in range(1, 3):
        placements.clone_template_schema(f"pool_{i}")
        Placement.objects.using("owner").create(kind="pool", schema_name=f"pool_{i}", capacity=100)
    for i in range(n_schemas):
        schema = f"t_bench_{i:04d}"
        placements.clone_template_schema(schema)
        Placement.objects.using("owner").create(kind="schema", schema_name=schema)
    for i in range(1, 3):
        name = placements.dedicated_database_name(f"bench{i}")
        placements.create_database_from_template(name)
        Placement.objects.using("owner").create(
            kind="database",
            database_alias=f"tdb_bench{i}",
            schema_name="public",
            db_name=name,
            credentials_encrypted=encrypt_json(placements.local_credentials()),
        )
    built = time.perf_counter() - t0
    return {"build_seconds": built}


def dt_env(bench_url: str, modules: dict, extra_path: str = "") -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.dt_settings",
        "BENCH_DATABASE_URL": bench_url,
        "DJANGO_MIGRATION_MODULES": json.dumps(modules),
        "PYTHONPATH": os.pathsep.join(filter(None, [extra_path, os.environ.get("PYTHONPATH", ""), str(BASE_DIR)])),
    }


def dt_prepare(bench_url: str) -> None:
    """django-tenants' own tables in public, and its tenant rows for the pools and schemas."""
    from tenants import placements
    from tenants.models import Placement

    env = dt_env(bench_url, {})
    subprocess.run([sys.executable, "manage.py", "migrate_schemas", "--shared", "-v", "0"], cwd=BASE_DIR, env=env,
                   check=True)  # fmt: skip
    rows = list(Placement.objects.using("owner").exclude(kind="database").values_list("schema_name", flat=True))
    with placements.owner_connect(autocommit=True) as conn:
        conn.execute("DELETE FROM dt_tenants_client")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO dt_tenants_client (schema_name, name) VALUES (%s, %s)", [(s, s) for s in rows])


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(_pinned(cmd), cwd=BASE_DIR, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return took, proc.stdout


def trivial_applied_count() -> int:
    """How many placements (pools, schemas, dedicated databases) recorded the trivial migration."""
    from migration_runs import plans

    targets = [t for t in plans.targets() if t.placement_id]
    applied = plans.applied_bulk(targets)
    return sum(1 for t in targets if ("workspace", TRIVIAL) in _applied_set(applied[t.key]))


def _applied_set(value: object) -> set:
    return value if isinstance(value, set) else set()


def reset_trivial() -> None:
    """Un-apply the trivial migration everywhere with plain SQL (the bench's own reset, not measured)."""
    import psycopg
    from psycopg import sql

    from migration_runs import plans

    by_db: dict = {}
    for t in plans.targets():
        by_db.setdefault(t.dbname, (t, []))[1].append(t.schema)
    for t, schemas in by_db.values():
        with psycopg.connect(**plans.target_conninfo(t), autocommit=True) as conn:
            for schema in sorted(set(schemas)):
                s = sql.Identifier(schema)
                conn.execute(
                    sql.SQL("DELETE FROM {}.django_migrations WHERE app = 'workspace' AND name = %s").format(s),
                    [TRIVIAL],
                )
                conn.execute(sql.SQL("COMMENT ON TABLE {}.workspace_member IS NULL").format(s))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schemas", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="worker processes on each side: our Celery worker and django-tenants' multiprocessing",
    )
    args = parser.parse_args()

    bench_url, bench_db = _bench_url()
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas_admin.settings.development")
    os.environ["MIGRATIONS_MAX_PER_SERVER"] = str(2 * args.processes)
    os.environ["BENCH_PROCESSES"] = str(args.processes)
    root = Path(tempfile.mkdtemp(prefix="bench-migrations-"))
    worker = None
    try:
        info = setup(args.schemas)
        from migration_runs.models import MigrationRun
        from tests.support.migrations import Worker

        n_placements = args.schemas + 4
        print(f"bench database {bench_db}: {args.schemas} schemas + 2 pools + 2 dedicated databases "
              f"(built in {info['build_seconds']:.1f} s); pinned to cores {CORES}; {args.processes} processes "
              f"per side (our worker concurrency, django-tenants TENANT_MULTIPROCESSING_MAX_PROCESSES)")  # fmt: skip
        dt_prepare(bench_url)
        module = _trivial_package(root)
        sys.path.insert(0, str(root))
        ours_env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(root), str(BASE_DIR)]),
            "DJANGO_MIGRATION_MODULES": json.dumps({"workspace": module}),
        }
        results: dict[str, dict[str, float]] = {"a": {}, "b": {}}

        def run_all(case: str, modules: dict, our_env: dict) -> None:
            took, out = timed([sys.executable, "manage.py", "migrate_tenants"], our_env)
            run = MigrationRun.objects.using("owner").get(pk=out.strip().splitlines()[-1])
            results[case]["ours"] = took
            assert run.finished_at is not None, "migrate_tenants waits for the run to finish"
            results[case]["ours_run"] = (run.finished_at - run.created_at).total_seconds()
            durations = [ms for ms in run.jobs.values_list("duration_ms", flat=True) if ms is not None]
            results[case]["ours_targets"] = len(durations)
            results[case]["ours_target_ms"] = sum(durations) / max(1, len(durations))
            results[case]["ours_jobs"] = run.jobs.exclude(job=None).values("job").distinct().count()
            if case == "b":
                results[case]["ours_applied"] = trivial_applied_count()
                reset_trivial()
            for executor in ("standard", "multiprocessing"):
                took, _ = timed([sys.executable, "manage.py", "migrate_schemas", "--executor", executor, "-v", "0"],
                                dt_env(bench_url, modules, str(root)))  # fmt: skip
                results[case][executor] = took
                if case == "b":
                    results[case][f"{executor}_applied"] = trivial_applied_count()
                    reset_trivial()

        # (a) nothing pending — the worker runs too, but every placement is skipped at planning.
        broker = _broker_url()
        print(f"broker for our worker: {broker}")
        worker = Worker(concurrency=args.processes, broker_url=broker)
        worker.env.update({"DATABASE_URL": bench_url})
        worker.env["PYTHONPATH"] = ours_env["PYTHONPATH"]
        worker.start()
        _pin(worker)
        run_all("a", {}, {**os.environ, **_broker(worker)})
        worker.stop()

        # (b) one trivial migration pending in every placement.
        worker = Worker(concurrency=args.processes, broker_url=broker)
        worker.env.update({"DATABASE_URL": bench_url,
                           "DJANGO_MIGRATION_MODULES": ours_env["DJANGO_MIGRATION_MODULES"],
                           "PYTHONPATH": ours_env["PYTHONPATH"]})  # fmt: skip
        worker.start()
        _pin(worker)
        time.sleep(3)  # let the worker finish booting, as a deployed worker would have
        run_all("b", {"workspace": module}, {**ours_env, **_broker(worker)})
        worker.stop()
        worker = None
        _report(results, n_placements, args.schemas)
    finally:
        if worker is not None:
            worker.stop()
        shutil.rmtree(root, ignore_errors=True)
        if not args.keep:
            _drop(bench_db)


def _broker(worker) -> dict:
    return worker.publisher_env()


def _broker_url() -> str:
    """Redis as in production (BENCH_BROKER_URL, default db 5 on localhost) if it answers, else the
    filesystem transport (which polls, adding up to 50 ms between one job and the next)."""
    url = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/5")
    if url.startswith("redis"):
        try:
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        except Exception:
            return "filesystem://"
    return url


def _pin(worker) -> None:
    if shutil.which("taskset") and worker.proc is not None:
        subprocess.run(["taskset", "-a", "-p", "-c", CORES, str(worker.proc.pid)], capture_output=True)


def _report(r: dict, n_placements: int, n_schemas: int) -> None:
    from django.conf import settings

    a, b = r["a"], r["b"]
    print()
    print(f"{'case':<34}{'ours':>10}{'dt standard':>14}{'dt multiproc':>14}{'std/ours':>10}{'mp/ours':>9}")
    for label, row in (("(a) nothing pending", a), ("(b) one trivial migration", b)):
        print(f"{label:<34}{row['ours']:>9.2f}s{row['standard']:>13.2f}s{row['multiprocessing']:>13.2f}s"
              f"{row['standard'] / row['ours']:>9.1f}x{row['multiprocessing'] / row['ours']:>8.1f}x")  # fmt: skip
    dt_n = n_schemas + 2  # django-tenants migrates the pools and schemas (no dedicated databases)
    print()
    print("per placement (wall time / placements migrated):")
    for label, row in (("(a)", a), ("(b)", b)):
        print(f"  {label} ours {1000 * row['ours'] / n_placements:.1f} ms over {n_placements} placements (+ control"
              f" plane, 2 templates); dt standard {1000 * row['standard'] / dt_n:.1f} ms, dt multiprocessing "
              f"{1000 * row['multiprocessing'] / dt_n:.1f} ms over {dt_n} schemas")  # fmt: skip
    print(
        f"  (b) ours: {b['ours_targets']} targets in {b['ours_jobs']} jobs, mean {b['ours_target_ms']:.1f} ms per "
        f"target on the worker (MIGRATIONS_PLACEMENTS_PER_JOB={settings.MIGRATIONS_PLACEMENTS_PER_JOB}); run "
        f"{b['ours_run']:.2f} s from request to last job (CLI wall includes Django start-up)"
    )
    print(
        f"  (b) placements that recorded the migration: ours {b['ours_applied']}/{n_placements}, "
        f"dt standard {b['standard_applied']}/{n_placements}, dt multiprocessing {b['multiprocessing_applied']}/"
        f"{n_placements} (dt cannot reach the 2 dedicated databases)"
    )
    print()
    print(
        f"targets: (a) >= 5x faster than standard: {'met' if a['standard'] / a['ours'] >= 5 else 'NOT met'}; "
        f"(b) >= 1.8x faster than standard on 2 cores: {'met' if b['standard'] / b['ours'] >= 1.8 else 'NOT met'}, "
        f">= 1.5x faster than multiprocessing: {'met' if b['multiprocessing'] / b['ours'] >= 1.5 else 'NOT met'}"
    )


def connections_name() -> str:
    from django.conf import settings

    return settings.DATABASES["owner"]["NAME"]


def _drop(bench_db: str, quiet: bool = False) -> None:
    from bench.harness import bench_databases, teardown  # after sys.path names the project

    names = bench_databases(bench_db)
    teardown(bench_db)
    if not quiet:
        print(f"dropped {', '.join(names)}")


if __name__ == "__main__":
    main()
