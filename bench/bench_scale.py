"""Scale benchmark: the operator's screens, provisioning, a migration run and connections as the
number of tenants grows to 10,000 (issue 15).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_x .venv/bin/python bench/bench_scale.py \
        [--tenants 10000] [--events-per-tenant 1000] [--sample 10] [--repeat 15] [--servers 2]

Builds in a private database `<db>_scale` (harness.setup_database) and grows it through steps of 100,
1,000 and 10,000 tenants (only the steps up to --tenants; a smaller --tenants is a quick run), 90 %
shared (in pools of 100), 9 % with their own schema, 1 % with a dedicated database, over --servers
PostgreSQL servers: DATABASE_URL's, and N-1 embedded ones started for the run (saas_admin.embedded_pg
on a free port, data in a temporary directory, as tests/support/servers.py does) and registered
through tenants.servers.server_register like the Servers screen. The default, 2, is the issue's
figure ("100 dedicated databases over 2 servers"); --servers 1 keeps everything on DATABASE_URL's.
Extra servers are registered with the default server's capacity, so the placement rule
(servers.server_choose: least full, default on ties) alternates between them and every kind
of placement splits evenly. Tenants are built in bulk — each placement on the server server_choose
picks, with the fields provisioning writes (servers.location_fields, provisioning dedicated_fields):
pool and tenant schemas cloned from that server's template schema, dedicated databases made by
create_dedicated_database (own login roles), tenant and domain rows inserted together, each
placement's migration state recorded — not through one provisioning saga each;
the control log gets --events-per-tenant events per tenant (bench_events.load_viewer_rows: generated
rows, a common and a rare value for every viewer filter). At every step it prints:

1. p50/p95 of every operator screen (Django test client, an Admin signed in with the second factor,
   --repeat requests after one warm-up; target p95 ≤ 200 ms); the per-tenant screens show bulk-built
   tenants on the last server (an extra one when there is one: the remote path);
2. provisioning p95 per level through the real saga run in this process (--sample tenants per level;
   targets 0.3 / 1 / 3 s), and the servers the saga placed them on;
3. a nothing-pending migration run over every placement on every server (run_start + the engine's
   jobs in this process);
4. backends on each server's bench databases (the control plane's and every `<bench>_…` one: the
   tenant-data and dedicated databases), and how many connections this process holds.

Drops every database (and login role) it made on DATABASE_URL's server at the end, whatever happened,
and stops the extra servers and deletes their data directories.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas_admin.settings.development")
os.environ["DJANGO_DEBUG"] = "0"  # DEBUG keeps every query in memory

from bench import harness  # noqa: E402

STEPS = (100, 1_000, 10_000)
SHARE = {"shared": 0.90, "schema": 0.09, "dedicated": 0.01}
TARGET = {"shared": 0.3, "schema": 1.0, "dedicated": 3.0}
POOL_CAPACITY = 100


def _split(total: int) -> dict[str, int]:
    dedicated = max(1, round(total * SHARE["dedicated"]))
    schema = max(1, round(total * SHARE["schema"]))
    return {"shared": total - schema - dedicated, "schema": schema, "dedicated": dedicated}


def grow(have: dict[str, int], want: dict[str, int]) -> float:
    """Add tenants up to `want` per level, in bulk; returns the seconds it took."""
    from django.conf import settings

    from tenants import migration_state, placements, servers
    from tenants.crypto import decrypt_json
    from tenants.models import Domain, Placement, Tenant
    from tenants.provisioning.steps import dedicated_fields

    t0 = time.perf_counter()
    tenants: list[Tenant] = []
    new_placements: list[Placement] = []

    def tenant(level: str, n: int, placement: Placement) -> None:
        slug = f"s{level[:3]}-{n:05d}"
        tenants.append(Tenant(slug=slug, name=f"Scale {level} {n}", isolation=level, status="active",
                              placement=placement, owner_email=f"owner@{slug}.test"))  # fmt: skip

    def schema_placement(level: str, kind: str, schema: str, capacity: int) -> Placement:
        server = servers.server_choose(isolation=level)  # what provisioning asks (least full server)
        placements.clone_template_schema(schema, at=servers.server_target(server))
        placement = Placement.objects.using("owner").create(
            kind=kind, schema_name=schema, capacity=capacity, **servers.location_fields(server)
        )
        new_placements.append(placement)
        return placement

    pools = list(
        Placement.objects.using("owner").filter(kind="pool", schema_name__startswith="pool_s").order_by("schema_name")
    )
    for n in range(have["shared"], want["shared"]):
        if n % POOL_CAPACITY == 0:
            pools.append(schema_placement("shared", "pool", f"pool_s{n // POOL_CAPACITY:04d}", POOL_CAPACITY))
        tenant("shared", n, pools[-1])
    for n in range(have["schema"], want["schema"]):
        tenant("schema", n, schema_placement("schema", "schema", f"t_sc_{n:05d}", 1))
    for n in range(have["dedicated"], want["dedicated"]):
        server = servers.server_choose(isolation="dedicated")
        name = placements.dedicated_database_name(f"sc{n:04d}")
        placement = Placement.objects.using("owner").create(
            database_alias=f"tdb_sc{n:04d}", schema_name="public", **dedicated_fields(server, name)
        )
        placements.create_dedicated_database(
            name, credentials=decrypt_json(placement.credentials_encrypted), at=servers.server_target(server)
        )
        new_placements.append(placement)
        tenant("dedicated", n, placement)
    Tenant.objects.using("owner").bulk_create(tenants, batch_size=2000)
    Domain.objects.using("owner").bulk_create(
        [Domain(domain=f"{t.slug}.{settings.BASE_DOMAIN}", tenant=t, is_primary=True, verified=True) for t in tenants],
        batch_size=2000,
    )
    for pool in {p.pk: p for p in pools}.values():
        Placement.objects.using("owner").filter(pk=pool.pk).update(tenant_count=pool.tenants.count())
    for placement in new_placements:  # what provisioning records (the migrations screen reads it)
        migration_state.placement_state_refresh(placement)
    return time.perf_counter() - t0


def placements_per_server() -> dict[str, dict[str, int]]:
    """{server: {placement kind: count}} (rows without a server are the default's)."""
    from django.db.models import Count

    from tenants.models import Placement

    out: dict[str, dict[str, int]] = {}
    for name, kind, n in Placement.objects.values_list("server__name", "kind").annotate(n=Count("id")):
        kinds = out.setdefault(name or "default", {})
        kinds[kind] = kinds.get(kind, 0) + n
    return out


def screens(sample: dict[str, Any]) -> dict[str, str]:
    """Every operator screen (GET), with one tenant of each level where the screen is per tenant."""
    from events.models import Event

    event_id = Event.objects.order_by("-event_id").values_list("event_id", flat=True).first()
    pages = {
        "home": "/",
        "operators": "/operators/",
        "tenants": "/tenants/",
        "tenants, search": "/tenants/?q=sded",
        "events": "/events/",
        "events, tenant filter": f"/events/?tenant={sample['shared'].slug}",
        "events, metadata filter": "/events/?meta=actor%3Da1",
        "event detail": f"/events/{event_id}/",
        "compliance": "/compliance/",
        "privacy": "/privacy/",
        "privacy holds": "/privacy/holds/",
        "privacy retention": "/privacy/retention/",
        "sagas": "/sagas/",
        "jobs": "/jobs/",
        "migrations": "/migrations/",
        "audit": "/audit/",
        "usage": "/usage/",
        "usage records": "/usage/records/",
        "webhooks": "/webhooks/",
        "servers": "/tenants/servers/",
    }
    for level, t in sample.items():
        pages[f"tenant page ({level})"] = f"/tenants/{t.pk}/"
    pages[f"tenant usage ({sample['dedicated'].isolation})"] = f"/usage/tenants/{sample['dedicated'].pk}/"
    pages["tenant compliance"] = f"/compliance/tenants/{sample['schema'].pk}/"
    return pages


def measure_screens(client: Any, pages: dict[str, str], repeat: int) -> dict[str, tuple[float, float, int]]:
    out = {}
    for name, url in pages.items():
        status = client.get(url).status_code  # warm-up
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            status = client.get(url).status_code
            times.append(1000 * (time.perf_counter() - t0))
        out[name] = (statistics.median(times), harness.percentile(times, 0.95), status)
    return out


def measure_provisioning(step: int, sample: int) -> dict[str, tuple[float, dict[str, int]]]:
    """{level: (p95 seconds, {server the saga placed the timed tenants on: how many})}."""
    from tenants.servers import placement_server
    from tests.support.tenancy import provision

    out = {}
    for level in ("shared", "schema", "dedicated"):
        provision(level, f"p{level[:3]}-{step}-warm")  # not timed: the first of a level loads its code paths
        times: list[float] = []
        landed: dict[str, int] = {}
        for i in range(sample):
            t0 = time.perf_counter()
            tenant = provision(level, f"p{level[:3]}-{step}-{i}")
            times.append(time.perf_counter() - t0)
            name = placement_server(tenant.placement).name
            landed[name] = landed.get(name, 0) + 1
        out[level] = (harness.percentile(times, 0.95), landed)
    return out


def migration_run() -> tuple[float, int, str]:
    from jobs.services import jobs_work_inline
    from migration_runs import services
    from migration_runs.models import MigrationRun

    t0 = time.perf_counter()
    run = services.run_start(actor=services.CLI, via="cli", note="bench_scale")
    jobs_work_inline(group=(services.GROUP, run.pk), timeout=3600)
    run = MigrationRun.objects.get(pk=run.pk)
    return time.perf_counter() - t0, run.jobs.count(), run.status


def backends(bench: str) -> tuple[dict[str, int], int]:
    """Backends (any process) on each server's bench databases — `bench` and every `bench_…`: the
    control plane and its templates on the first, the tenant-data and dedicated databases on every
    server — and this process's own open connections."""
    from django.db import connections

    from core import dbroles
    from tenants import servers

    per_server = {}
    for server in servers.server_list():
        at = servers.server_target(server)
        with dbroles.admin_connect(server=at.admin_info() if at else None) as admin:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s OR starts_with(datname, %s)",
                [bench, bench + "_"],
            ).fetchone()
        per_server[server.name] = row[0] if row else 0
    mine = sum(1 for c in connections.all(initialized_only=True) if c.connection is not None)
    return per_server, mine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_servers(count: int, roots: list[Path]) -> str:
    """Start `count` embedded PostgreSQL servers (data under a temporary directory each, appended to
    `roots` before starting, so `stop_servers` finds a half-started one) and register them; returns
    the last one's name ("default" with none)."""
    from saas_admin import embedded_pg
    from tenants import servers

    capacity = servers.server_default().capacity  # equal capacities: server_choose alternates
    name = "default"
    for i in range(count):
        roots.append(Path(tempfile.mkdtemp(prefix="bench-scale-pg-")))
        port = _free_port()
        embedded_pg.ensure_running(roots[-1] / "pg", port)
        name = servers.server_register(name=f"pg{i + 2}", host="127.0.0.1", port=str(port), capacity=capacity).name
    return name


def stop_servers(roots: list[Path]) -> None:
    from saas_admin import embedded_pg

    for root in roots:
        embedded_pg.stop(root / "pg")
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000, help="grow up to this many (steps 100/1,000/10,000)")
    parser.add_argument("--events-per-tenant", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=10, help="tenants provisioned per level per step")
    parser.add_argument("--repeat", type=int, default=15, help="requests per screen per step")
    parser.add_argument("--servers", type=int, default=2, help="PostgreSQL servers (extra ones are embedded)")
    args = parser.parse_args()
    steps = [s for s in STEPS if s < args.tenants] + [args.tenants]
    bench = harness.setup_database("_scale")
    extra: list[Path] = []
    try:
        t0 = time.perf_counter()
        last = start_servers(args.servers - 1, extra)  # the per-tenant screens show tenants on this one
        if extra:
            print(f"{len(extra)} more server(s) started and registered in {time.perf_counter() - t0:.1f} s")
        from django.conf import settings

        from bench.bench_events import load_viewer_rows
        from tenants.models import Tenant
        from tenants.servers import placement_server

        settings.ALLOWED_HOSTS = ["*"]
        client = harness.operator_client("bench_admin", role="Admin")
        have = {"shared": 0, "schema": 0, "dedicated": 0}
        results = []
        for step in steps:
            want = _split(step)
            built = grow(have, want)
            have = want
            t0 = time.perf_counter()
            load_viewer_rows(step * args.events_per_tenant)
            loaded = time.perf_counter() - t0
            bulk = Tenant.objects.filter(slug__startswith="s").order_by("slug")
            sample: dict[str, Any] = {  # on the last server if it has one of the level (it may not at 100: 1 dedicated)
                level: bulk.filter(isolation=level, placement__server__name=last).first()
                or bulk.filter(isolation=level).first()
                for level in have
            }
            provisioning = measure_provisioning(step, args.sample)
            pages = measure_screens(client, screens(sample), args.repeat)
            run_seconds, run_jobs, run_status = migration_run()
            held = backends(bench)
            spread = placements_per_server()
            results.append((step, want, built, loaded, pages, provisioning, (run_seconds, run_jobs, run_status), held))
            print(f"\n== {step:,} tenants {want} (built in {built:.0f} s, events in {loaded:.0f} s) ==", flush=True)
            for name, (p50, p95, status) in pages.items():
                flag = "" if status == 200 else f"  HTTP {status}"
                print(f"   {name:28s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms{'  > 200 ms' if p95 > 200 else ''}{flag}")
            print("   provisioning p95: " + ", ".join(f"{k} {v:.2f} s (target {TARGET[k]:g} s; on {_names(on)})"
                                                     for k, (v, on) in provisioning.items()))  # fmt: skip
            print(f"   nothing-pending migration run: {run_seconds:.1f} s, {run_jobs} jobs, {run_status}")
            print("   per-tenant screens: " + ", ".join(f"{t.slug} on {placement_server(t.placement).name}"
                                                     for t in sample.values()))  # fmt: skip
            print(f"   placements per server: {'; '.join(f'{k} {_names(v)}' for k, v in spread.items())}")
            print(f"   backends on the bench databases: {_names(held[0])} (this process holds {held[1]} connections)")
        _summary(results)
    finally:
        try:
            harness.teardown(bench)
        finally:
            stop_servers(extra)
    return 0


def _names(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _summary(results: list) -> None:
    print("\nGrowth (p95 ms per screen; provisioning p95 s; run s; backends)")
    header = f"{'':28s}" + "".join(f"{r[0]:>12,}" for r in results)
    print(header)
    for name in results[-1][4]:
        print(f"{name:28s}" + "".join(f"{r[4].get(name, (0, 0, 0))[1]:>12.1f}" for r in results))
    for level in ("shared", "schema", "dedicated"):
        print(f"{'provisioning ' + level:28s}" + "".join(f"{r[5][level][0]:>12.2f}" for r in results))
    print(f"{'migration run (nothing)':28s}" + "".join(f"{r[6][0]:>12.1f}" for r in results))
    for server in results[-1][7][0]:
        print(f"{'backends ' + server:28s}" + "".join(f"{r[7][0].get(server, 0):>12d}" for r in results))


if __name__ == "__main__":
    sys.exit(main())
