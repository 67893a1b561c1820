"""Access export and erasure of one subject vs a plain pg_dump of the same placement (ratios, same run).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_bench_privacy .venv/bin/python bench/bench_privacy.py \
        [--isolation schema] [--subject-events 10000] [--total-events 1000000]

Creates (and migrates) the database named in DATABASE_URL, provisions one tenant through the real
saga, gives one member (the subject) --subject-events events that carry their personal data
(encrypted per subject, appended through EventStore.append_many), fills the tenant's log up to
--total-events with other events (owner-side INSERT … SELECT generate_series: the triggers still
stamp and chain every row), then times, each through the real code path (job engine, saga):
1. `pg_dump` of the placement (schema, or the dedicated database) to /dev/null — the baseline;
2. the access export (request → privacy.dsar_export job → ZIP);
3. the erasure saga, verification scan of placement and control plane included.
Targets from issue 13: export ≤ 5 s, erasure ≤ 10 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas_admin.settings.development")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from core.actors import SystemActor  # noqa: E402
from core.personal_data import subject_ref  # noqa: E402
from events.crypto import Personal  # noqa: E402
from events.store import NewEvent  # noqa: E402
from jobs.services import jobs_work_inline  # noqa: E402
from privacy import services  # noqa: E402
from privacy.models import RequestKind, RequestStatus  # noqa: E402
from saas_admin.embedded_pg import client_program  # noqa: E402
from sagas.models import SagaState  # noqa: E402
from sagas.services import saga_run_inline  # noqa: E402
from tenants import placements  # noqa: E402
from tenants.context import applied, tenant_context  # noqa: E402
from tenants.databases import register_placement  # noqa: E402
from tenants.logs import tenant_log_store  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tenants.provisioning.services import tenant_provision  # noqa: E402
from workspace import services as workspace  # noqa: E402

ACTOR = SystemActor("bench")


def setup(isolation: str) -> Tenant:
    from core import dbroles

    dbroles.bootstrap()
    call_command("migrate", interactive=False, verbosity=0)
    placements.templates_rebuild()
    slug = f"bench-{int(time.time())}"
    saga = tenant_provision(slug=slug, name=slug, isolation=isolation, actor=ACTOR)
    saga = saga_run_inline(saga_id=saga.id, timeout=300)
    assert saga.state == SagaState.COMPLETED, saga.error
    return Tenant.objects.select_related("placement").get(pk=str(saga.tenant_id))


def seed(tenant: Tenant, subject_events: int, total_events: int) -> str:
    email = f"subject@{tenant.slug}.test"
    with tenant_context(tenant):
        member = workspace.member_create(name="Bench Subject Person", email=email, password="bench-password-1")
        workspace.member_create(name="Another Bench Person", email=f"other@{tenant.slug}.test")
    store = tenant_log_store(tenant)
    subject = subject_ref(tenant.pk, email)
    t0 = time.perf_counter()
    batch, done, stream = 500, 0, 0
    while done < subject_events:
        n = min(batch, subject_events - done)
        events = [
            NewEvent(
                "note.written",
                {"by": Personal(subject, {"name": "Bench Subject Person", "text": f"note {done + i}"})},
                metadata={"member_id": member.pk},
            )  # fmt: skip
            for i in range(n)
        ]
        store.append_many("note", f"s{stream}", events)
        done += n
        stream += 1
    filler = max(0, total_events - subject_events - 2)
    placement = tenant.placement
    assert placement is not None
    register_placement(placement)
    with applied(placement.owner_alias, tenant_id=tenant.pk, schema_name=placement.schema_name) as alias:
        with connections[alias].cursor() as cursor:
            for start in range(0, filler, 100_000):
                size = min(100_000, filler - start)
                cursor.execute(
                    "INSERT INTO tenantlog_event (tenant_id, event_uuid, aggregate_type, aggregate_id, version,"
                    " event_type, event_version, event_data, event_metadata, occurred_at)"
                    " SELECT %s, gen_random_uuid(), 'filler', 'f' || (g / 1000), g %% 1000 + 1, 'filler.added', 1,"
                    " jsonb_build_object('n', g, 'text', 'some other tenant activity'), '{}',"
                    " timestamptz '2026-01-01' + g * interval '1 second'"
                    " FROM generate_series(%s, %s) g ORDER BY g",
                    [tenant.pk, start, start + size - 1],
                )
            cursor.execute("ANALYZE tenantlog_event")
    print(f"seeded {subject_events} subject events + {filler} others in {time.perf_counter() - t0:.1f}s")
    return email


def pg_dump_seconds(tenant: Tenant) -> float:
    cfg = settings.DATABASE_BOOTSTRAP
    placement = tenant.placement
    assert placement is not None
    dbname = placement.db_name if placement.is_dedicated else settings.DATABASES["owner"]["NAME"]
    command = [client_program("pg_dump"), "-d", dbname, "-U", cfg.get("USER") or "postgres", "-f", os.devnull]
    if cfg.get("HOST"):
        command += ["-h", cfg["HOST"]]
    if cfg.get("PORT"):
        command += ["-p", str(cfg["PORT"])]
    if not placement.is_dedicated:
        command += ["-n", placement.schema_name]
    t = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "PGPASSWORD": cfg.get("PASSWORD") or ""})
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--isolation", default="schema", choices=["shared", "schema", "dedicated"])
    parser.add_argument("--subject-events", type=int, default=10_000)
    parser.add_argument("--total-events", type=int, default=1_000_000)
    args = parser.parse_args()
    settings.PRIVACY_BUNDLE_DIR = tempfile.mkdtemp(prefix="bench-dsar-")
    tenant = setup(args.isolation)
    email = seed(tenant, args.subject_events, args.total_events)
    dump = pg_dump_seconds(tenant)

    t = time.perf_counter()
    opened = services.request_open(tenant=tenant, email=email, kind=RequestKind.ACCESS, actor=ACTOR)
    jobs_work_inline(group=("privacy.request", opened.pk), timeout=600)
    export = time.perf_counter() - t
    opened.refresh_from_db()
    assert opened.status == RequestStatus.READY, opened.error

    t = time.perf_counter()
    erasure_request = services.request_open(tenant=tenant, email=email, kind=RequestKind.ERASURE, actor=ACTOR)
    saga = saga_run_inline(saga_id=erasure_request.saga_id, timeout=600)
    erasure = time.perf_counter() - t
    assert saga.state == SagaState.COMPLETED, saga.error
    steps = {
        s.name: (s.finished_at - s.started_at).total_seconds()
        for s in saga.steps.all()
        if s.started_at and s.finished_at
    }

    print(f"{args.isolation}, {args.total_events} events in the placement, {args.subject_events} of the subject")
    print(f"pg_dump of the placement : {dump:.2f} s (baseline)")
    print(f"access export (ZIP)      : {export:.2f} s = {export / dump:.2f}x pg_dump | rows {opened.counts}")
    print(f"erasure incl. verify     : {erasure:.2f} s = {erasure / dump:.2f}x pg_dump")
    print("erasure steps (s)        : " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))


if __name__ == "__main__":
    main()
