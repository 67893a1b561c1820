"""Event store benchmarks; every figure is a ratio against a baseline measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_bench_events .venv/bin/python bench/bench_events.py \
        [--appends 2000] [--writers 8] [--replay-events 100000] [--viewer-rows 10000000]

Creates (and migrates) the database named in DATABASE_URL, then measures:
1. append rate, 1 writer and N writer processes, through EventStore.append (triggers, hash chain,
   optimistic concurrency) vs a plain INSERT of the same row into a table with the same columns and
   indexes but no triggers; with and without pg_notify per transaction; batch appends (100 per statement).
2. state at a random instant T of one aggregate with --replay-events events: snapshots (every 100)
   + replay vs a full replay, same instants.
3. viewer page time (keyset, 50 rows, newest first) at depth 1M vs depth 0 in a table of --viewer-rows
   events generated with generate_series (owner-side bulk load; triggers lifted for the load only).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas_admin.settings.development")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from events import aggregates  # noqa: E402
from events.store import EventStore, NewEvent  # noqa: E402

BENCH_TYPE = "bench.counter"


@aggregates.register(BENCH_TYPE, snapshot_every=100)
def _apply(state, event):
    return {"total": state.get("total", 0) + event.event_data.get("amount", 0), "n": state.get("n", 0) + 1}


PLAIN_INSERT = """
INSERT INTO bench_plain (event_uuid, aggregate_type, aggregate_id, version, event_type, event_version, event_data,
                         event_metadata, occurred_at, tenant_id, tx_id, hash)
VALUES (%s, %s, %s, %s, %s, 1, %s, %s, clock_timestamp(), NULL, pg_current_xact_id(), '\\x00')
"""


def setup() -> None:
    from core import dbroles

    dbroles.bootstrap()
    call_command("migrate", interactive=False, verbosity=0)
    with connections["owner"].cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_plain")
        cursor.execute(
            "CREATE TABLE bench_plain (LIKE events_event INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES)"
        )
    connections.close_all()


def _payload(n: int) -> dict:
    return {"amount": n % 7, "note": "benchmark event", "ref": n}


def _append_worker(args) -> tuple[int, float]:
    kind, writer, count, notify, batch = args
    from psycopg.types.json import Jsonb

    settings.EVENTS_NOTIFY = "transaction" if notify else "off"
    connections.close_all()
    store = EventStore.control()
    streams = [f"w{writer}-{uuid.uuid4().hex[:8]}-{i}" for i in range(50)]
    versions = dict.fromkeys(streams, 0)
    start = time.perf_counter()
    done = 0
    cursor: Any = connections["default"].cursor()
    while done < count:
        stream = streams[done % len(streams)]
        if kind == "store" and batch == 1:
            store.append(BENCH_TYPE, stream, "bench.added", _payload(done), expected_version=versions[stream])
            versions[stream] += 1
            done += 1
        elif kind == "store":
            events = [NewEvent("bench.added", _payload(done + i)) for i in range(batch)]
            store.append_many(BENCH_TYPE, stream, events, expected_version=versions[stream])
            versions[stream] += batch
            done += batch
        elif batch == 1:
            versions[stream] += 1
            cursor.execute(PLAIN_INSERT, [uuid.uuid4(), BENCH_TYPE, stream, versions[stream], "bench.added",
                                          Jsonb(_payload(done)), Jsonb({})])  # fmt: skip
            done += 1
        else:
            rows, params = [], []
            for i in range(batch):
                versions[stream] += 1
                rows.append("(%s, %s, %s, %s, %s, 1, %s, %s, clock_timestamp(), NULL, pg_current_xact_id(), '\\x00')")
                params += [
                    uuid.uuid4(),
                    BENCH_TYPE,
                    stream,
                    versions[stream],
                    "bench.added",
                    Jsonb(_payload(done + i)),
                    Jsonb({}),
                ]
            cursor.execute(
                "INSERT INTO bench_plain (event_uuid, aggregate_type, aggregate_id, version, event_type, event_version, "
                "event_data, event_metadata, occurred_at, tenant_id, tx_id, hash) VALUES " + ", ".join(rows),
                params,
            )
            done += batch
    elapsed = time.perf_counter() - start
    connections.close_all()
    return done, elapsed


def append_rate(kind: str, writers: int, count: int, *, notify: bool = False, batch: int = 1) -> float:
    connections.close_all()
    with mp.get_context("fork").Pool(writers) as pool:
        start = time.perf_counter()
        results = pool.map(_append_worker, [(kind, w, count, notify, batch) for w in range(writers)])
        wall = time.perf_counter() - start
    return sum(n for n, _ in results) / wall


def bench_appends(count: int, writers: int) -> None:
    print("\n== 1. Append rate (events/s, each append its own transaction) ==")
    rows = []
    for label, w in (("1 writer", 1), (f"{writers} writers", writers)):
        plain = append_rate("plain", w, count)
        store = append_rate("store", w, count)
        store_notify = append_rate("store", w, count, notify=True)
        rows.append((label, plain, store, store_notify))
        print(f"{label:>10}: plain INSERT {plain:8.0f}/s | EventStore {store:8.0f}/s = {store / plain:5.1%} of plain"
              f" | with pg_notify per tx {store_notify:8.0f}/s = {store_notify / store:5.1%} of no-notify")  # fmt: skip
    plain_b = append_rate("plain", 1, count * 2, batch=100)
    store_b = append_rate("store", 1, count * 2, batch=100)
    print(
        f"batch x100: plain INSERT {plain_b:8.0f}/s | EventStore.append_many {store_b:8.0f}/s = {store_b / plain_b:5.1%} of plain"
    )


def bench_state_at(n_events: int, samples: int) -> None:
    print(f"\n== 2. State at T, one aggregate with {n_events} events ==")
    store = EventStore.control()
    agg = f"big-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    with connections["default"].cursor() as cursor:
        # One statement; the insert trigger chains every row to the previous one (same as appends).
        cursor.execute(
            """
            INSERT INTO events_event (event_uuid, aggregate_type, aggregate_id, version, event_type, event_version,
                                      event_data, event_metadata, occurred_at)
            SELECT gen_random_uuid(), %s, %s, g, 'bench.added', 1, jsonb_build_object('amount', g %% 7), '{}',
                   timestamptz '2026-01-01' + g * interval '1 second'
              FROM generate_series(1, %s) g
            """,
            [BENCH_TYPE, agg, n_events],
        )
    connection = connections["default"]
    for version in range(100, n_events + 1, 100):
        store._snapshot(connection, BENCH_TYPE, agg, version)
    print(f"loaded {n_events} events + {n_events // 100} snapshots in {time.perf_counter() - t0:.1f}s")
    import datetime as dt

    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    instants = [base + dt.timedelta(seconds=random.randint(1, n_events)) for _ in range(samples)]
    fast, slow = [], []
    for i, at in enumerate(instants):
        t = time.perf_counter()
        a = store.state_at(BENCH_TYPE, agg, at)
        fast.append(time.perf_counter() - t)
        if i < max(5, samples // 20):  # full replays are slow: a subset of the same instants
            t = time.perf_counter()
            b = store.state_at(BENCH_TYPE, agg, at, use_snapshots=False)
            slow.append(time.perf_counter() - t)
            assert a.state == b.state, "snapshot + replay must equal the full replay"

    def p(values, q):
        return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000

    print(f"snapshots + replay: p50 {p(fast, 0.5):6.2f} ms  p99 {p(fast, 0.99):6.2f} ms  ({len(fast)} samples)")
    print(f"full replay:        p50 {p(slow, 0.5):6.1f} ms  p99 {p(slow, 0.99):6.1f} ms  ({len(slow)} samples)")
    print(f"speed-up (mean): {statistics.mean(slow) / statistics.mean(fast):.0f}x")


def bench_viewer(rows: int, depth: int, repeats: int) -> None:
    from events import selectors

    print(f"\n== 3. Viewer page time, {rows:,} events ==")
    t0 = time.perf_counter()
    owner = connections["owner"]
    with owner.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM events_event")
        have = cursor.fetchone()[0]
        if have < rows:
            # Bulk load as the owner with the insert trigger lifted for this load only (hashes are
            # placeholders: these rows only exist to give the table its size).
            cursor.execute("ALTER TABLE events_event DISABLE TRIGGER events_event_before_insert")
            step = 1_000_000
            for start in range(have, rows, step):
                n = min(step, rows - start)
                cursor.execute(
                    """
                    INSERT INTO events_event (event_uuid, aggregate_type, aggregate_id, version, event_type,
                        event_version, event_data, event_metadata, occurred_at, tenant_id, tx_id, hash)
                    SELECT gen_random_uuid(), 'bulk.thing', 'bulk-' || (g / 10), g %% 10 + 1,
                           'bulk.' || (g %% 5), 1, jsonb_build_object('n', g), jsonb_build_object('actor', 'a' || (g %% 100)),
                           timestamptz '2025-01-01' + g * interval '1 second', NULL, pg_current_xact_id(), '\\x00'
                      FROM generate_series(%s, %s) g
                    """,
                    [start * 10, start * 10 + n - 1],
                )
                print(f"  loaded {start + n:,} rows ({time.perf_counter() - t0:.0f}s)", flush=True)
            cursor.execute("ALTER TABLE events_event ENABLE TRIGGER events_event_before_insert")
        cursor.execute("ANALYZE events_event")
        cursor.execute("SELECT max(event_id) FROM events_event")
        top = cursor.fetchone()[0]
    print(f"table ready in {time.perf_counter() - t0:.0f}s; estimated rows: {EventStore.control().estimated_count():,}")
    store = EventStore.control()
    cases = [
        ("no filter", selectors.EventFilters()),
        ("event_type filter", selectors.EventFilters(event_type="bulk.3")),
    ]
    for label, filters in cases:
        times = {}
        for name, before in (("depth 0", None), (f"depth {depth:,}", top - depth)):
            samples = []
            for _ in range(repeats):
                t = time.perf_counter()
                page = selectors.event_page(store=store, filters=filters, before=before)
                samples.append(time.perf_counter() - t)
                assert len(page.events) == 50
            times[name] = statistics.median(samples)
        (n0, a), (n1, b) = times.items()
        print(f"{label:>18}: {n0} {a * 1000:6.2f} ms | {n1} {b * 1000:6.2f} ms | ratio {b / a:4.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--replay-events", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--viewer-rows", type=int, default=10_000_000)
    parser.add_argument("--depth", type=int, default=1_000_000)
    parser.add_argument("--skip", default="", help="comma list of parts to skip: appends,state,viewer")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    setup()
    print(f"PostgreSQL database {settings.DATABASES['default']['NAME']} as {settings.DATABASES['default']['USER']}; "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    if "appends" not in skip:
        bench_appends(args.appends, args.writers)
    if "state" not in skip:
        bench_state_at(args.replay_events, args.samples)
    if "viewer" not in skip:
        bench_viewer(args.viewer_rows, args.depth, repeats=30)


if __name__ == "__main__":
    main()
