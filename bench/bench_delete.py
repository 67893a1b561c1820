"""Deleting a big schema tenant: the `tenant.delete` saga against django-tenants' one `DROP SCHEMA … CASCADE`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_x .venv/bin/python bench/bench_delete.py \
        [--tables 200 --rows 1000000]

Builds two identical schema tenants in a private database `<db>_dbench`: the tenant's own tables plus
extra tables (each with a primary key and an index on tenant_id, like a tenant app's) up to --tables,
and --rows rows in all (a tenth members, a twentieth events, the rest spread over the extra tables).
Then, in the same run:

- ours: `tenant_delete_and_wait(grace_seconds=0)` — what `manage.py delete_tenant SLUG` runs: the
  final export for the owner (a job), then the saga (keys destroyed, tables dropped in batches of
  TENANCY_DELETE_TABLES_PER_TRANSACTION, each its own transaction, domains released); prints the
  total, the export and the drop step;
- baseline: the other tenant's schema with one `DROP SCHEMA … CASCADE` (what django-tenants'
  `auto_drop_schema` does), which takes every table's locks in one transaction.

Prints the durations and the server's lock table size (max_locks_per_transaction × max_connections):
a single-transaction drop of more lockable objects than that fails with "out of shared memory"; ours
does not (tenants/tests/test_deletion.py proves it past the lock table). Drops what it made.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))


def _provision(slug: str):
    from core.actors import SystemActor
    from sagas.services import saga_run_inline
    from tenants.models import Tenant
    from tenants.provisioning.services import tenant_provision

    saga = tenant_provision(slug=slug, isolation="schema", actor=SystemActor("bench"))
    saga = saga_run_inline(saga_id=saga.id, timeout=300)
    assert saga.state == "completed", saga.error
    return Tenant.objects.select_related("placement").get(pk=str(saga.tenant_id))


def _build(tenant, tables: int, rows: int) -> int:
    """Extra tables up to `tables` and `rows` rows in all, as the placement's owner; returns the table count."""
    from tenants.moves import copy

    schema = tenant.placement.schema_name
    conn = copy.connect(tenant.placement, tenant.pk)
    tid = str(tenant.pk)
    members, events = rows // 10, rows // 20
    conn.execute(
        "INSERT INTO workspace_member (tenant_id, name, email, password, is_admin, is_active, created_at) "
        "SELECT %s, 'Member ' || g, 'm' || g || '@bench.test', '', false, true, now() FROM generate_series(1, %s) g",
        [tid, members],
    )
    per_stream = max(1, events // 100)
    insert = (
        "INSERT INTO tenantlog_event (event_uuid, aggregate_type, aggregate_id, version, event_type, event_version, "
        "event_data, event_metadata, tenant_id) SELECT gen_random_uuid(), 'bench.stream', s::text, v, 'bench.tick', 1, "
        "jsonb_build_object('n', v), '{}'::jsonb, %s "
        "FROM generate_series(1, 100) s, generate_series(%s::int, %s::int) v ORDER BY v, s"
    )
    conn.execute(insert, [tid, 1, min(per_stream, 10)])
    conn.commit()
    conn.execute("ANALYZE tenantlog_event")  # the trigger's predecessor lookup needs statistics
    if per_stream > 10:
        conn.execute(insert, [tid, 11, per_stream])
    conn.commit()
    row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", [schema]).fetchone()
    existing = int(row[0]) if row else 0
    extra = max(0, tables - existing)
    rest = max(0, rows - members - per_stream * 100)
    each = rest // extra if extra else 0
    for n in range(extra):
        name = sql.Identifier(schema, f"bench_extra_{n}")
        conn.execute(
            sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, payload text)").format(name)
        )
        conn.execute(sql.SQL("CREATE INDEX ON {} (tenant_id)").format(name))
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (tenant_id, payload) SELECT %s, repeat('y', 60) FROM generate_series(1, %s)"
            ).format(name),
            [tid, each],
        )
        if n % 20 == 19:
            conn.commit()
    conn.commit()
    conn.close()
    return existing + extra


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    from bench.harness import setup_database, teardown

    bench = setup_database("_dbench")
    try:
        from django.conf import settings

        from core import dbroles
        from jobs.models import Job
        from sagas.models import SagaStep
        from tenants.models import TenantDeletion
        from tenants.offboarding.services import tenant_delete_and_wait

        ours, theirs = _provision("del-ours"), _provision("del-theirs")
        t0 = time.perf_counter()
        counts = [_build(t, args.tables, args.rows) for t in (ours, theirs)]
        print(f"built two schema tenants of {counts[0]} tables and ~{args.rows:,} rows each in "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        with dbroles.admin_connect(bench) as admin:
            locks = admin.execute(
                "SELECT current_setting('max_locks_per_transaction')::int * current_setting('max_connections')::int"
            ).fetchone()
        print(f"server lock table: {locks[0] if locks else '?'} lockable objects; "
              f"TENANCY_DELETE_TABLES_PER_TRANSACTION = {settings.TENANCY_DELETE_TABLES_PER_TRANSACTION}")  # fmt: skip

        started = time.perf_counter()
        deletion = tenant_delete_and_wait(tenant=ours, grace_seconds=0)
        total = time.perf_counter() - started
        deletion = TenantDeletion.objects.get(pk=deletion.pk)
        steps = {
            s.name: (s.finished_at - s.started_at).total_seconds()
            for s in SagaStep.objects.filter(saga_id=str(deletion.saga_id))
            if s.started_at and s.finished_at
        }
        export = (
            Job.objects.filter(group_type="tenant_deletion", group_id=str(deletion.pk), kind="tenants.export")
            .exclude(finished_at=None)
            .first()
        )
        export_s = 0.0
        if export is not None and export.started_at and export.finished_at:
            export_s = (export.finished_at - export.started_at).total_seconds()
        print(f"ours   delete_tenant: {total:.2f} s in all — final export {export_s:.2f} s, "
              f"drop_data {steps.get('drop_data', 0):.2f} s, saga steps {sum(steps.values()):.2f} s; "
              f"destroyed {deletion.destroyed.get('tables_dropped', '?')} tables")  # fmt: skip

        with dbroles.admin_connect(bench) as admin:
            started = time.perf_counter()
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(theirs.placement.schema_name)))
            baseline = time.perf_counter() - started
        print(f"django-tenants' DROP SCHEMA … CASCADE (one transaction): {baseline:.2f} s")
        drop = steps.get("drop_data", 0)
        print(f"drop step ÷ DROP SCHEMA CASCADE: {drop / baseline if baseline else float('nan'):.2f}×")
        return 0
    finally:
        teardown(bench)


if __name__ == "__main__":
    sys.exit(main())
