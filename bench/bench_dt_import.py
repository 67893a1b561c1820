"""django-tenants import benchmark, one run: `import_django_tenants` of tenants of several sizes
against `pg_dump -n <schema> | psql` of the same django-tenants schema, measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_x .venv/bin/python bench/bench_dt_import.py [--sizes 10000,100000]

Builds a private control plane `<db>_dtbench` (migrated, templates built) and a django-tenants
deployment in `<db>_dtbench_src` with django-tenants itself (bench/dt_project.py): one tenant schema
per size, filled with half members and half accounts (set-based INSERTs into its legacy tables).
Then runs the import (planning, one job per tenant in this process, clone, copy, register) and reads
each tenant's job duration. Baseline per tenant: `pg_dump -n <schema> --no-owner --no-privileges`
of the source piped into `psql` of a scratch database, timed here. Prints rows, import seconds,
rows/s, pg_dump|psql seconds and the ratio pg_dump time / import time. Drops everything it made.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))


def _setup() -> str:
    from bench.harness import setup_database_for_subprocesses  # after sys.path names the project

    return setup_database_for_subprocesses("_dtbench")


def _drop(bench: str) -> None:
    from bench.harness import teardown  # after sys.path names the project

    teardown(bench)


def _source(bench: str, sizes: list[int]) -> str:
    """The django-tenants deployment: one schema `size_<n>` per size, filled set-based."""
    import psycopg
    from django.conf import settings
    from django.db import connections
    from psycopg import sql

    from bench import dt_project
    from core import dbroles

    name = f"{bench}_src"
    with dbroles.admin_connect() as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(settings.DB_OWNER_ROLE))
        )
    s = connections.settings["owner"]
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    url = f"postgres://{s['USER']}{password}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{name}"
    tenants = [{"schema": f"size_{n}", "name": f"{n} rows", "domains": [f"size{n}.dt.example"]} for n in sizes]
    dt_project.build(url, tenants, owner_role=settings.DB_OWNER_ROLE, owner_password=settings.DB_OWNER_PASSWORD)
    with psycopg.connect(url, autocommit=True) as conn:
        for n in sizes:
            S = sql.Identifier(f"size_{n}")
            conn.execute(
                sql.SQL("INSERT INTO {}.workspace_member (name, email, password, is_admin, is_active, created_at) "
                        "SELECT 'member ' || i, 'm' || i || '@bench.test', '', false, true, now() "
                        "FROM generate_series(1, %s) i").format(S), [n // 2],
            )  # fmt: skip
            conn.execute(
                sql.SQL("INSERT INTO {}.workspace_account (name, currency, balance, created_at) "
                        "SELECT 'account ' || i, 'EUR', i * 1.25, now() FROM generate_series(1, %s) i").format(S),
                [n - n // 2],
            )  # fmt: skip
            conn.execute(sql.SQL("VACUUM ANALYZE {}.workspace_member").format(S))
            conn.execute(sql.SQL("VACUUM ANALYZE {}.workspace_account").format(S))
    return url


def _pg_dump_seconds(url: str, schema: str, bench: str, rows: int) -> float:
    import psycopg
    from django.conf import settings
    from psycopg import sql

    from core import dbroles
    from saas_admin.embedded_pg import client_program

    owner = settings.DB_OWNER_ROLE

    scratch = f"{bench}_dump"
    dbroles.drop_database(scratch)
    with dbroles.admin_connect() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(scratch), sql.Identifier(owner)))
    target = url.rsplit("/", 1)[0] + f"/{scratch}"
    started = time.perf_counter()
    dump = subprocess.Popen(
        [client_program("pg_dump"), "-n", schema, "--no-owner", "--no-privileges", "-d", url], stdout=subprocess.PIPE
    )
    subprocess.run(
        [client_program("psql"), "-q", "-o", "/dev/null", "-d", target],
        stdin=dump.stdout,
        check=False,
        stderr=subprocess.DEVNULL,
    )
    dump.wait()
    seconds = time.perf_counter() - started
    with psycopg.connect(target, autocommit=True) as conn:  # the baseline really restored every row
        q = "SELECT (SELECT count(*) FROM {s}.workspace_member) + (SELECT count(*) FROM {s}.workspace_account)"
        restored = conn.execute(sql.SQL(q).format(s=sql.Identifier(schema))).fetchone()
    dbroles.drop_database(scratch)
    if not restored or restored[0] != rows:
        raise SystemExit(f"pg_dump | psql restored {restored} of {rows} rows of {schema}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    bench = _setup()
    try:
        from jobs.models import Job
        from tenants.adoption import django_tenants_import

        url = _source(bench, sizes)
        baselines = {n: _pg_dump_seconds(url, f"size_{n}", bench, n) for n in sizes}
        started = time.perf_counter()
        report = django_tenants_import(url=url)
        total = time.perf_counter() - started
        assert not report.refused, [p.describe() for p in report.refused]
        jobs = {j.payload["schema"]: j for j in Job.objects.filter(kind="tenants.django_tenants_import")}
        print(f"import of {len(sizes)} tenants: {total:.2f} s in all (planning, jobs, registering)")
        print(f"{'rows':>9} {'import s':>9} {'rows/s':>9} {'pg_dump|psql s':>15} {'ratio':>6}")
        for n in sizes:
            seconds = (jobs[f"size_{n}"].duration_ms or 0) / 1000
            print(f"{n:>9} {seconds:>9.2f} {n / seconds:>9.0f} {baselines[n]:>15.2f} {baselines[n] / seconds:>6.2f}")
        print("ratio = pg_dump|psql time / import time of the same schema (1.0: as fast as pg_dump|psql)")
    finally:
        _drop(bench)


if __name__ == "__main__":
    main()
