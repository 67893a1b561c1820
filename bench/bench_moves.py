"""Move benchmark, one run: move time and write-freeze time per pair of levels and tenant size, and
the bulk copy's throughput against `pg_dump | psql` of the same tenant measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_x .venv/bin/python bench/bench_moves.py \
        [--sizes 1000,100000] [--pairs schema:shared,shared:dedicated,...] [--repeat 1]

Builds a private database `<db>_mbench` (control plane migrated, templates built), and for each size
and pair provisions a tenant at the source level through the real saga, fills it with that many rows
(half workspace members, half events of 100 ledger-like streams, through the hash-chain trigger), and
moves it through the real `tenant.move` saga in this process (the job engine's in-process runner: no
broker latency). Reported per move: total time, bulk-copy step time, the write freeze (from the
status change to `moving` to the switch's commit) and rows/s of the bulk copy.

Baseline, for schema-level sources: the same tenant's schema with `pg_dump -n t_<slug>` piped into
`psql` of a scratch database, timed here; the ratio is pg_dump time / bulk-copy time (≥ 0.5 means our
copy runs at least at half pg_dump|psql's speed — the issue's target). Targets printed next to the
numbers: freeze ≤ 1 s p95 at 100,000 rows. Drops everything it made.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
ALL_PAIRS = [
    ("shared", "schema"), ("shared", "dedicated"), ("shared", "shared"), ("schema", "shared"),
    ("schema", "dedicated"), ("dedicated", "shared"), ("dedicated", "schema"), ("dedicated", "dedicated"),
]  # fmt: skip


def _setup() -> str:
    os.environ.setdefault("TENANCY_MOVE_PURGE_GRACE_SECONDS", "0")
    from bench.harness import setup_database_for_subprocesses  # after sys.path names the project

    return setup_database_for_subprocesses("_mbench")


def _drop(bench: str) -> None:
    from bench.harness import teardown  # after sys.path names the project

    teardown(bench)


def _provision(isolation: str, slug: str):
    from core.actors import SystemActor
    from sagas.services import saga_run_inline
    from tenants.models import Tenant
    from tenants.provisioning.services import tenant_provision

    saga = tenant_provision(slug=slug, isolation=isolation, actor=SystemActor("bench"))
    saga = saga_run_inline(saga_id=saga.id, timeout=300)
    assert saga.state == "completed", saga.error
    return Tenant.objects.select_related("placement").get(pk=str(saga.tenant_id))


def _fill(tenant, rows: int) -> None:
    """rows/2 members and rows/2 events (100 streams), written as the placement's owner."""
    from tenants.moves import copy

    members, events = rows // 2, rows - rows // 2
    per_stream = max(1, events // 100)
    conn = copy.connect(tenant.placement, tenant.pk)
    conn.execute(
        "INSERT INTO workspace_member (tenant_id, name, email, password, is_admin, is_active, created_at) "
        "SELECT %s, 'Member ' || g, 'm' || g || '@bench.test', '', false, true, now() FROM generate_series(1, %s) g",
        [str(tenant.pk), members],
    )
    insert = (
        "INSERT INTO tenantlog_event (event_uuid, aggregate_type, aggregate_id, version, event_type, event_version, "
        "event_data, event_metadata, tenant_id) SELECT gen_random_uuid(), 'bench.stream', s::text, v, 'bench.tick', 1, "
        "jsonb_build_object('n', v, 'note', repeat('x', 40)), '{}'::jsonb, %s "
        "FROM generate_series(1, 100) s, generate_series(%s::int, %s::int) v ORDER BY v, s"
    )
    # The first versions, ANALYZE, then the rest: without statistics the trigger's predecessor lookup
    # scans each stream (quadratic), which made filling a 1,000,000-row tenant take most of a run.
    conn.execute(insert, [str(tenant.pk), 1, min(per_stream, 10)])
    conn.commit()
    conn.execute("ANALYZE tenantlog_event")
    conn.execute(insert, [str(tenant.pk), 11, per_stream])
    conn.commit()
    conn.close()


def _pg_dump_seconds(tenant, bench: str) -> float | None:
    """`pg_dump -n <schema> | psql scratch` of a schema-level tenant, timed; None for other levels."""
    from django.db import connections

    from core import dbroles
    from saas_admin.embedded_pg import client_program

    if tenant.placement.kind != "schema":
        return None
    scratch = f"{bench}_dump"
    dbroles.drop_database(scratch)
    with dbroles.admin_connect() as admin:
        admin.autocommit = True
        admin.execute(f'CREATE DATABASE "{scratch}"')
    info = dbroles.conninfo(connections.settings["owner"])
    env = {**os.environ, "PGPASSWORD": info.get("password", "")}
    host = ["-h", info["host"]] if info.get("host") else []
    port = ["-p", str(info["port"])] if info.get("port") else []
    admin_user = ["-U", "postgres"]
    started = time.perf_counter()
    # As the bootstrap superuser: pg_dump refuses tables whose FORCE'd RLS would filter its COPY.
    dump = subprocess.Popen(
        [client_program("pg_dump"), *host, *port, *admin_user, "-n", tenant.placement.schema_name, "--no-owner", "--no-privileges",
         info["dbname"]], stdout=subprocess.PIPE, env=env,
    )  # fmt: skip
    subprocess.run(
        [client_program("psql"), *host, *port, *admin_user, "-q", "-o", "/dev/null", "-d", scratch],
        stdin=dump.stdout, check=False, env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    dump.wait()
    seconds = time.perf_counter() - started
    # A restore that failed part-way would look fast: count what arrived against the source.
    schema = tenant.placement.schema_name
    counts = []
    for dbname in (info["dbname"], scratch):
        with dbroles.admin_connect(dbname) as conn:
            tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])]
            total = 0
            for table in tables:
                query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
                row = conn.execute(query).fetchone()
                total += row[0] if row else 0
            counts.append(total)
    dbroles.drop_database(scratch)
    if counts[0] != counts[1]:
        print(f"   (pg_dump | psql restored {counts[1]} of {counts[0]} rows; baseline discarded)", flush=True)
        return None
    return seconds


def _move(tenant, to: str) -> dict:
    from core.actors import SystemActor
    from jobs.services import jobs_work_inline
    from sagas.models import SagaStep
    from sagas.services import saga_run_inline
    from tenants.moves.services import tenant_move

    started = time.perf_counter()
    move = tenant_move(tenant=tenant, to=to, actor=SystemActor("bench"))
    saga = saga_run_inline(saga_id=move.saga_id, timeout=3600)
    total = time.perf_counter() - started
    assert saga.state == "completed", saga.error
    move.refresh_from_db()
    bulk = SagaStep.objects.get(saga_id=str(move.saga_id), name="bulk_copy")
    assert bulk.finished_at is not None and bulk.started_at is not None
    bulk_s = (bulk.finished_at - bulk.started_at).total_seconds()
    jobs_work_inline(group=("tenant_move", move.pk), timeout=600)  # purge the source now
    return {"total": total, "bulk": bulk_s, "freeze": move.freeze_seconds or 0.0, "rows": move.rows_total}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--pairs", default=",".join(f"{a}:{b}" for a, b in ALL_PAIRS))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    bench = _setup()
    freezes: dict[int, list[float]] = {size: [] for size in sizes}
    ratios: list[tuple[int, float]] = []
    try:
        print(
            f"{'rows':>9} {'from → to':<22} {'move s':>8} {'bulk s':>8} {'freeze s':>9} {'bulk rows/s':>12} {'pg_dump|psql s':>15}"
        )
        n = 0
        for size in sizes:
            for source, target in pairs:
                for _ in range(args.repeat):
                    n += 1
                    tenant = _provision(source, f"mb{n}-{source[:3]}")
                    _fill(tenant, size)
                    baseline = _pg_dump_seconds(tenant, bench)
                    result = _move(tenant, target)
                    freezes[size].append(result["freeze"])
                    if baseline is not None:
                        ratios.append((size, baseline / result["bulk"]))
                    print(
                        f"{size:>9} {source + ' → ' + target:<22} {result['total']:8.2f} {result['bulk']:8.2f} "
                        f"{result['freeze']:9.3f} {result['rows'] / max(result['bulk'], 1e-9):12.0f} "
                        f"{baseline if baseline is not None else float('nan'):15.2f}",
                        flush=True,
                    )
        print()
        for size, values in freezes.items():
            worst = max(values)
            print(f"freeze at {size:>9} rows: median {statistics.median(values):.3f} s, max {worst:.3f} s "
                  f"(n={len(values)}){'   target ≤ 1 s p95' if size == 100_000 else ''}")  # fmt: skip
        for size, ratio in ratios:
            print(
                f"bulk copy vs pg_dump | psql at {size} rows (schema source): {ratio:.2f}× pg_dump's speed (target ≥ 0.5)"
            )
    finally:
        _drop(bench)


if __name__ == "__main__":
    main()
