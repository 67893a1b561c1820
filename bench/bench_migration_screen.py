"""The Migrations screen at 100 / 1,000 / 10,000 placements: it reads the control plane's record of
each placement's migrations (tenants.MigrationState), never the placements themselves.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_x .venv/bin/python bench/bench_migration_screen.py

Builds a private bench database `<db>_sbench` (control plane migrated, both templates), then grows
it to each size with Placement rows and their records — 89 % own schemas, 10 % dedicated databases,
1 % pools; 5 % one migration behind, 1 % drifted, 0.5 % unreachable, 1 % not recorded yet. The
placements' schemas and databases are never created: if the screen opened any of them it would
show errors, not timings. Baseline in the same run: the same requests with no placements at all,
so the ratio is the screen's growth. Prints p50/p95 per request and its query count; drops what it
made.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
SIZES = (0, 100, 1_000, 10_000)
REQUESTS = {
    "default": {},
    "pending": {"state": "pending"},
    "dedicated, page 5": {"kind": "database", "page": "5"},
    "name search": {"q": "t_bench_0999"},
    "drifted": {"state": "drift"},
}
REPEAT = 25


def _bench_url() -> tuple[str, str]:
    from saas_admin.env import database_url

    url = database_url()
    base, _, name = url.rpartition("/")
    bench = f"{name.split('?')[0]}_sbench"
    return f"{base}/{bench}", bench


def _grow(to: int, have: int, histories: dict[str, list[str]]) -> None:
    from django.utils import timezone

    from tenants import migration_state
    from tenants.crypto import encrypt_json
    from tenants.models import MigrationState, Placement

    creds = encrypt_json({"owner_user": "nobody", "owner_password": "x", "app_user": "nobody", "app_password": "x"})
    rows = []
    for i in range(have, to):
        if i % 100 == 0:
            rows.append(Placement(kind="pool", schema_name=f"pool_{i:05d}", capacity=100))
        elif i % 10 == 0:
            rows.append(Placement(kind="database", database_alias=f"tdb_bench_{i:05d}", schema_name="public",
                                  db_name=f"bench_db_{i:05d}", credentials_encrypted=creds))  # fmt: skip
        else:
            rows.append(Placement(kind="schema", schema_name=f"t_bench_{i:05d}"))
    created = Placement.objects.using("owner").bulk_create(rows, batch_size=2000)
    now = timezone.now()
    states = []
    for n, p in enumerate(created, start=have):
        if n % 100 == 7:
            continue  # not recorded yet
        history = histories["behind" if n % 20 == 3 else "current"]
        label = p.db_name or p.schema_name
        states.append(MigrationState(
            placement_id=p.pk, kind=p.kind, label=label, server="127.0.0.1:5432", applied=history,
            digest=migration_state.digest_of(history), recorded_at=now, verified_at=now,
            drift="Changed since recorded — applied outside a run: workspace.0001_initial." if n % 100 == 11 else "",
            error="OperationalError: connection failed" if n % 200 == 13 else "",
        ))  # fmt: skip
    MigrationState.objects.using("owner").bulk_create(states, batch_size=2000)


def _measure(client) -> dict[str, tuple[float, float, int]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    out = {}
    for name, params in REQUESTS.items():
        for _ in range(3):
            assert client.get("/migrations/", params).status_code == 200
        times = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            response = client.get("/migrations/", params)
            times.append(1000 * (time.perf_counter() - t0))
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as queries:
            client.get("/migrations/", params)
        times.sort()
        out[name] = (statistics.median(times), times[int(0.95 * (len(times) - 1))], len(queries))
    return out


def main() -> None:
    bench_url, bench_db = _bench_url()
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas_admin.settings.development")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from bench.harness import operator_client
    from core import dbroles
    from migration_runs import plans
    from tenants import placements

    settings.ALLOWED_HOSTS = ["*"]
    _drop(bench_db)
    try:
        dbroles.bootstrap()
        call_command("migrate", database="owner", interactive=False, verbosity=0)
        placements.templates_rebuild()
        _everything, tenant_only = plans.migration_order()
        current = sorted(plans.fmt(k) for k in tenant_only)
        histories = {"current": current, "behind": current[:-1]}
        client = operator_client("bench_viewer", role="Viewer")
        results = {}
        have = 0
        for size in SIZES:
            _grow(size, have, histories)
            have = size
            results[size] = _measure(client)
        _report(results)
    finally:
        _drop(bench_db)


def _report(results: dict) -> None:
    base = results[0]
    print(f"Migrations screen, {REPEAT} requests each after 3 warm-ups (p50 / p95 ms, queries); baseline = "
          "no placements")  # fmt: skip
    header = f"{'request':<22}" + "".join(f"{f'{n:,} placements':>26}" for n in SIZES[1:]) + f"{'p95 ÷ baseline':>18}"
    print(header)
    for name in REQUESTS:
        cells = "".join(
            f"{results[n][name][0]:>9.1f} /{results[n][name][1]:>7.1f} ({results[n][name][2]:>2}q)" for n in SIZES[1:]
        )
        print(f"{name:<22}{cells}{results[SIZES[-1]][name][1] / base[name][1]:>17.2f}x")
    worst = max(results[SIZES[-1]][name][1] for name in REQUESTS)
    print(f"\ntarget: p95 <= 200 ms at {SIZES[-1]:,} placements: {'met' if worst <= 200 else 'NOT met'} "
          f"(worst {worst:.0f} ms)")  # fmt: skip


def _drop(bench_db: str) -> None:
    from bench.harness import teardown  # after sys.path names the project

    teardown(bench_db)


if __name__ == "__main__":
    main()
