"""Export and restore benchmark, one run: a schema-level tenant's export and restore against `pg_dump` /
`pg_restore` of the same schema, measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_x .venv/bin/python bench/bench_exports.py \
        [--sizes 10000,100000] [--repeat 1]

Builds a private database `<db>_xbench` (control plane migrated, templates built); per size provisions
a schema-level tenant through the real saga and fills it like bench_moves (half workspace members,
half events of 100 streams through the hash-chain trigger). Then, each timed on its own:

- export: the `tenants.export` job run in this process (COPY of every table from one snapshot into a
  ZIP, deflate level 1, SHA-256 per table) — job start to end;
- pg_dump: `pg_dump -Fc -n t_<slug>` of the same schema into a file (custom format, compressed);
- restore: the `tenants.restore` job's load into a new schema tenant (the file checked — every hash —
  then loaded in one transaction: events through the hash-chain trigger, chain and counts verified);
  provisioning the new tenant is reported apart;
- pg_restore: `pg_restore` of the dump into a scratch database.

Ratios printed: pg_dump s / export s and pg_restore s / restore s (1.0 = as fast as PostgreSQL's own
tools). Drops everything it made.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))


def _setup(exports_dir: str) -> str:
    from saas_admin.env import database_url

    base, _, name = database_url().rpartition("/")
    bench = f"{name.split('?')[0]}_xbench"
    os.environ["DATABASE_URL"] = f"{base}/{bench}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "saas_admin.settings.test"
    os.environ["TENANCY_EXPORTS_DIR"] = exports_dir
    import django

    django.setup()
    from django.core.management import call_command

    from core import dbroles
    from tenants import placements

    dbroles.ensure_database(bench, recreate=True)
    call_command("migrate", database="owner", interactive=False, verbosity=0)
    placements.templates_rebuild()
    return bench


def _pg(args: list[str]) -> float:
    from django.db import connections

    from core import dbroles

    info = dbroles.conninfo(connections.settings["owner"])
    env = {**os.environ, "PGPASSWORD": info.get("password", "")}
    host = ["-h", info["host"]] if info.get("host") else []
    port = ["-p", str(info["port"])] if info.get("port") else []
    started = time.perf_counter()
    # As the bootstrap superuser: pg_dump refuses tables whose FORCE'd RLS would filter its COPY.
    subprocess.run([args[0], *host, *port, "-U", "postgres", *args[1:]], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def _job_seconds(job) -> float:
    return (job.finished_at - job.started_at).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="xbench-")
    bench = _setup(os.path.join(workdir, "exports"))

    from django.db import connections

    from bench.bench_moves import _drop, _fill, _provision
    from core import dbroles
    from core.actors import SystemActor
    from jobs.models import Job
    from jobs.services import jobs_work_inline
    from saas_admin.embedded_pg import client_program
    from tenants.exports.jobs import export_path
    from tenants.exports.services import tenant_export, tenant_restore_new

    try:
        print(f"{'rows':>8} {'export s':>9} {'pg_dump s':>10} {'ratio':>6} {'restore s':>10} {'pg_restore s':>13} "
              f"{'ratio':>6} {'provision s':>12} {'zip MB':>7} {'dump MB':>8}")  # fmt: skip
        n = 0
        for size in [int(s) for s in args.sizes.split(",")]:
            for _ in range(args.repeat):
                n += 1
                tenant = _provision("schema", f"xb{n}")
                _fill(tenant, size)
                export = tenant_export(tenant=tenant, actor=SystemActor("bench"))
                jobs_work_inline(group=("tenant_export", export.pk), timeout=3600)
                export.refresh_from_db()
                assert export.state == "done" and export.job_id is not None, export.error
                export_s = _job_seconds(Job.objects.get(pk=export.job_id))

                dump = os.path.join(workdir, f"xb{n}.dump")
                db = connections.settings["owner"]["NAME"]
                dump_s = _pg([client_program("pg_dump"), "-Fc", "-n", tenant.placement.schema_name, "--no-owner", "--no-privileges",
                              "-f", dump, db])  # fmt: skip
                scratch = f"{bench}_restore"
                dbroles.drop_database(scratch)
                with dbroles.admin_connect() as admin:
                    admin.autocommit = True
                    admin.execute(f'CREATE DATABASE "{scratch}"')
                pg_restore_s = _pg([client_program("pg_restore"), "--no-owner", "--no-privileges", "-d", scratch, dump])
                dbroles.drop_database(scratch)

                started = time.perf_counter()
                copy_of = tenant_restore_new(
                    path=export_path(export), slug=f"xb{n}-copy", isolation="schema", worker_grace_seconds=0
                )
                total_s = time.perf_counter() - started
                load = Job.objects.filter(kind="tenants.restore", payload__tenant_id=str(copy_of.pk)).get()
                restore_s = _job_seconds(load)
                assert load.result["rows"] == export.rows
                print(
                    f"{export.rows:>8} {export_s:9.2f} {dump_s:10.2f} {dump_s / export_s:6.2f} {restore_s:10.2f} "
                    f"{pg_restore_s:13.2f} {pg_restore_s / restore_s:6.2f} {total_s - restore_s:12.2f} "
                    f"{export.size / 1e6:7.1f} {os.path.getsize(dump) / 1e6:8.1f}",
                    flush=True,
                )
        print("\nratio = PostgreSQL's tool time / ours (1.0 = as fast; the restore checks every hash first and "
              "rebuilds the event chain through the trigger)")  # fmt: skip
    finally:
        _drop(bench)


if __name__ == "__main__":
    main()
