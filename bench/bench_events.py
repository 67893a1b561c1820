"""Event store benchmarks; every figure is a ratio against a baseline measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_bench_events .venv/bin/python bench/bench_events.py \
        [--appends 2000] [--writers 8] [--replay-events 100000] [--viewer-rows 10000000]

Builds its own database `<DATABASE_URL's database>_ebench` (migrated), measures, and drops it — with the
comparison table, the state-at-T aggregate and the viewer's rows — at the end (`--keep` keeps it for a
rerun and reuses a kept one; a run without it drops a kept one: loading 10M viewer rows takes ~10 minutes).
It measures:
1. append rate, 1 writer and N writer processes, through EventStore.append (triggers, hash chain,
   optimistic concurrency) vs a plain INSERT of the same row into a table with the same columns and
   indexes but no triggers; with and without pg_notify per transaction; batch appends (100 per statement);
   and the WAL each append writes (pg_current_wal_insert_lsn before and after; no timing in it, but
   other sessions' writes and a checkpoint's full-page images in the window count too).
2. state at a random instant T of one aggregate with --replay-events events: snapshots (every 100)
   + replay vs a full replay, same instants.
3. viewer page time (keyset, 50 rows, newest first) in a table of --viewer-rows events (default 1M; the
   issue's figure is 10M) generated with generate_series (owner-side bulk load; triggers lifted for the
   load only) with a rare and a common value for every filter: p50/p95 of each filter alone at depth 0
   and at --depth (default a tenth of the rows), and of every pair of filters in each rare/common mix.
   `--skip appends,state` runs only this part.
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
# Production's DEBUG: with it on, Django's debug cursor logs every statement, which both sides would pay.
os.environ.setdefault("DJANGO_DEBUG", "0")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connections  # noqa: E402

from bench import harness  # noqa: E402
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


def setup(keep: bool) -> str:
    """The bench's own database `<db>_ebench` (dropped at the end unless --keep, which also reuses one
    a --keep run left, with its viewer rows)."""
    bench = harness.setup_database("_ebench", templates=False, recreate=not keep)
    with connections["owner"].cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_plain")
        cursor.execute(
            "CREATE TABLE bench_plain (LIKE events_event INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES)"
        )
    connections.close_all()
    return bench


def _payload(n: int) -> dict:
    return {"amount": n % 7, "note": "benchmark event", "ref": n}


def _append_worker(args) -> tuple[int, float]:
    kind, writer, count, notify, batch, commit = args
    from psycopg.types.json import Jsonb

    settings.EVENTS_NOTIFY = "transaction" if notify else "off"
    connections.close_all()
    store = EventStore.control()
    streams = [f"w{writer}-{uuid.uuid4().hex[:8]}-{i}" for i in range(50)]
    versions = dict.fromkeys(streams, 0)
    cursor: Any = connections["default"].cursor()
    cursor.execute("SELECT set_config('synchronous_commit', %s, false)", [commit])  # this session only
    start = time.perf_counter()
    done = 0
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
    cursor.execute("RESET synchronous_commit")
    connections.close_all()
    return done, elapsed


def wal_per_append(kind: str, count: int) -> float:
    """WAL bytes per append, one writer (a forked process, as for the rates), each append its own
    transaction. The WAL position is read on connections of its own: the parent must fork without a
    Django connection pool, which the children would inherit and share."""
    import psycopg

    from core import dbroles

    info = dbroles.conninfo(connections.settings["default"])
    with psycopg.connect(**info, autocommit=True) as conn:
        before = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]  # type: ignore[index]
    connections.close_all()
    with mp.get_context("fork").Pool(1) as pool:
        [(done, _elapsed)] = pool.map(_append_worker, [(kind, 0, count, False, 1, "off")])
    with psycopg.connect(**info, autocommit=True) as conn:
        written = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [before]).fetchone()[0]  # type: ignore[index]
    return float(written) / done


def append_rate(
    kind: str, writers: int, count: int, *, notify: bool = False, batch: int = 1, commit: str = "off"
) -> float:
    """Events per second over the slowest writer's time (every writer's own clock, started once connected)."""
    connections.close_all()
    with mp.get_context("fork").Pool(writers) as pool:
        results = pool.map(_append_worker, [(kind, w, count, notify, batch, commit) for w in range(writers)])
    return sum(n for n, _ in results) / max(t for _, t in results)


def _interleaved(writers: int, count: int, rounds: int, commit: str, batch: int = 1) -> tuple[float, float, float]:
    """Plain and store measured alternately, `rounds` times (which goes first alternates too): the median
    rate of each and the median of the per-round ratios, so a burst of load from elsewhere hits both."""
    plain, store, ratios = [], [], []
    for i in range(rounds):
        pair = {}
        for kind in ("plain", "store") if i % 2 == 0 else ("store", "plain"):
            pair[kind] = append_rate(kind, writers, count, batch=batch, commit=commit)
        plain.append(pair["plain"])
        store.append(pair["store"])
        ratios.append(pair["store"] / pair["plain"])
    return statistics.median(plain), statistics.median(store), statistics.median(ratios)


def bench_appends(count: int, writers: int, rounds: int) -> None:
    print("\n== 1. Append rate (events/s, each append its own transaction) ==")
    print(f"plain INSERT and EventStore.append interleaved, {rounds} rounds of {count} appends per writer; medians")
    for commit in ("off", "on"):
        print(f"-- synchronous_commit = {commit}" + (" (the embedded server's default)" if commit == "off" else ""))
        for label, w in (("1 writer", 1), (f"{writers} writers", writers)):
            plain, store, ratio = _interleaved(w, count, rounds, commit)
            print(
                f"{label:>10}: plain INSERT {plain:8.0f}/s | EventStore {store:8.0f}/s | per-round ratio {ratio:5.1%}"
            )
        plain_b, store_b, ratio_b = _interleaved(1, count * 2, max(1, rounds // 2), commit, batch=100)
        print(
            f"batch x100: plain INSERT {plain_b:8.0f}/s | EventStore.append_many {store_b:8.0f}/s | ratio {ratio_b:5.1%}"
        )
    plain_wal, store_wal = wal_per_append("plain", count), wal_per_append("store", count)
    print(f"WAL per append: plain INSERT {plain_wal:6.0f} B | EventStore {store_wal:6.0f} B | "
          f"ratio {store_wal / plain_wal:4.2f}")  # fmt: skip
    store = append_rate("store", writers, count)
    store_notify = append_rate("store", writers, count, notify=True)
    print(f"{writers} writers, synchronous_commit off: pg_notify per transaction {store_notify:8.0f}/s = "
          f"{store_notify / store:5.1%} of no-notify")  # fmt: skip


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


VIEWER_LOAD = """
INSERT INTO events_event (event_uuid, aggregate_type, aggregate_id, version, event_type, event_version,
                          event_data, event_metadata, occurred_at, tenant_id, correlation_id, tx_id, hash)
SELECT gen_random_uuid(),
       CASE WHEN g %% 100000 = 11 THEN 'rare.thing' ELSE 'bulk.thing' END,
       CASE WHEN g %% 100000 = 11 THEN 'rare-' || g WHEN g %% 50 = 0 THEN 'hot' ELSE 'bulk-' || (g / 10) END,
       CASE WHEN g %% 100000 = 11 THEN 1 WHEN g %% 50 = 0 THEN g / 50 ELSE g %% 10 + 1 END,
       CASE WHEN g %% 100000 = 13 THEN 'rare.happened' ELSE 'bulk.' || (g %% 5) END,
       1, jsonb_build_object('n', g),
       CASE WHEN g %% 100000 = 19 THEN jsonb_build_object('request', 'r-rare')
            ELSE jsonb_build_object('actor', 'a' || (g %% 100)) END,
       timestamptz '2025-01-01' + g * interval '1 second',
       CASE WHEN g %% 10 = 0 THEN %(hot_tenant)s::uuid WHEN g %% 100000 = 7 THEN %(rare_tenant)s::uuid
            ELSE md5((g %% 5000)::text)::uuid END,
       CASE WHEN g %% 7 = 0 THEN %(hot_corr)s::uuid WHEN g %% 100000 = 17 THEN %(rare_corr)s::uuid END,
       pg_current_xact_id(), '\\x00'
  FROM generate_series(%(first)s, %(last)s) g
"""
HOT_TENANT, RARE_TENANT = uuid.UUID(int=1), uuid.UUID(int=2)
HOT_CORRELATION, RARE_CORRELATION = uuid.UUID(int=3), uuid.UUID(int=4)


def _viewer_values(rows: int) -> dict[str, dict[str, Any]]:
    """Per filter, a common value (on 1-100 % of the rows) and a rare one (on 1 row in 100,000)."""
    import datetime as dt

    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)  # row g occurred at base + g seconds
    return {
        "tenant": {"common": {"tenant_id": HOT_TENANT}, "rare": {"tenant_id": RARE_TENANT}},  # 10 % / 0.001 %
        "aggregate type": {"common": {"aggregate_type": "bulk.thing"}, "rare": {"aggregate_type": "rare.thing"}},
        "aggregate id": {"common": {"aggregate_id": "hot"}, "rare": {"aggregate_id": "bulk-1234"}},  # 2 % / 10 rows
        "event type": {"common": {"event_type": "bulk.3"}, "rare": {"event_type": "rare.happened"}},  # 20 %
        "time range": {  # 70 % of the log ending at 90 % of its depth / one minute deep in the past
            "common": {
                "since": base + dt.timedelta(seconds=rows * 0.2),
                "until": base + dt.timedelta(seconds=rows * 0.9),
            },
            "rare": {"since": base + dt.timedelta(seconds=1000), "until": base + dt.timedelta(seconds=1060)},
        },
        "correlation": {"common": {"correlation_id": HOT_CORRELATION}, "rare": {"correlation_id": RARE_CORRELATION}},
        "metadata": {"common": {"metadata": {"actor": "a1"}}, "rare": {"metadata": {"request": "r-rare"}}},  # 1 %
    }


def load_viewer_rows(rows: int) -> None:
    t0 = time.perf_counter()
    owner = connections["owner"]
    with owner.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM events_event WHERE aggregate_type IN ('bulk.thing', 'rare.thing')")
        have = cursor.fetchone()[0]
        if have < rows:
            # Bulk load as the owner with the insert trigger lifted for this load only (hashes are
            # placeholders: these rows only exist to give the table its size and its skew).
            cursor.execute("ALTER TABLE events_event DISABLE TRIGGER events_event_before_insert")
            step = 100_000  # short transactions: a long one holds back every gap-safe feed on the server
            for start in range(have, rows, step):
                n = min(step, rows - start)
                cursor.execute(
                    VIEWER_LOAD,
                    {"first": start + 1, "last": start + n, "hot_tenant": HOT_TENANT, "rare_tenant": RARE_TENANT,
                     "hot_corr": HOT_CORRELATION, "rare_corr": RARE_CORRELATION},
                )  # fmt: skip
                if (start + n) % 1_000_000 == 0 or start + n == rows:
                    print(f"  loaded {start + n:,} rows ({time.perf_counter() - t0:.0f}s)", flush=True)
            cursor.execute("ALTER TABLE events_event ENABLE TRIGGER events_event_before_insert")
        cursor.execute("VACUUM ANALYZE events_event")
    print(f"table ready in {time.perf_counter() - t0:.0f}s; estimated rows: {EventStore.control().estimated_count():,}")


def bench_viewer(rows: int, depth: int, repeats: int) -> None:
    """Every viewer filter alone with a rare and a common value, at depth 0 and deep, and every pair of
    filters in the four rare/common mixes at depth 0: p50/p95 of the page (50 rows), the viewer's own
    query (events.selectors.event_page)."""
    from events import selectors

    print(f"\n== 3. Viewer page time, {rows:,} events, {repeats} repeats per case ==")
    load_viewer_rows(rows)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT max(event_id) FROM events_event")
        top = cursor.fetchone()[0]
    store = EventStore.control()
    values = _viewer_values(rows)

    def timed(filters: dict[str, Any], before: int | None) -> tuple[float, float, int]:
        f = selectors.EventFilters(**filters)
        samples, shown = [], 0
        for _ in range(repeats):
            t = time.perf_counter()
            page = selectors.event_page(store=store, filters=f, before=before)
            samples.append(time.perf_counter() - t)
            shown = len(page.events)
        samples.sort()
        return samples[len(samples) // 2] * 1000, samples[min(len(samples) - 1, int(0.95 * len(samples)))] * 1000, shown

    worst: list[tuple[float, str]] = []
    a0, _, _ = timed({}, None)
    a1, _, _ = timed({}, top - depth)
    print(f"{'no filter':>34}: depth 0 p50 {a0:7.2f} ms | depth {depth:,} p50 {a1:7.2f} ms | ratio {a1 / a0:4.2f}")
    print(f"{'filter (value)':>34}  {'depth 0 p50 / p95':>20}  {'deep p50 / p95':>20}  rows")
    for name, kinds in values.items():
        for kind, filters in kinds.items():
            p50, p95, shown = timed(filters, None)
            d50, d95, _ = timed(filters, top - depth)
            label = f"{name} ({kind})"
            worst += [(p95, label), (d95, label + " deep")]
            print(f"{label:>34}  {p50:8.2f} / {p95:8.2f}  {d50:8.2f} / {d95:8.2f}  {shown}")
    print("pairs at depth 0, p95 ms (rare+rare / rare+common / common+rare / common+common):")
    names = list(values)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            cells = []
            for k1, k2 in (("rare", "rare"), ("rare", "common"), ("common", "rare"), ("common", "common")):
                _, p95, _ = timed({**values[first][k1], **values[second][k2]}, None)
                worst.append((p95, f"{first} ({k1}) + {second} ({k2})"))
                cells.append(f"{p95:8.2f}")
            print(f"{first + ' + ' + second:>34}  {' / '.join(cells)}")
    worst.sort(reverse=True)
    print("slowest p95: " + "; ".join(f"{label} {ms:.1f} ms" for ms, label in worst[:5]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6, help="interleaved plain/store rounds per append case")
    parser.add_argument("--replay-events", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--viewer-rows", type=int, default=1_000_000, help="10_000_000 for the issue's figure")
    parser.add_argument("--depth", type=int, default=None, help="deep-page cursor, default a tenth of the rows")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip", default="", help="comma list of parts to skip: appends,state,viewer")
    parser.add_argument("--keep", action="store_true", help="keep the bench database (and reuse a kept one)")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    bench = setup(args.keep)
    try:
        print(f"PostgreSQL database {bench} as {settings.DATABASES['default']['USER']}; {os.cpu_count()} CPUs")
        if "appends" not in skip:
            bench_appends(args.appends, args.writers, args.rounds)
        if "state" not in skip:
            bench_state_at(args.replay_events, args.samples)
        if "viewer" not in skip:
            bench_viewer(args.viewer_rows, args.depth or args.viewer_rows // 10, repeats=args.repeats)
    finally:
        if args.keep:
            print(f"kept {bench} (--keep); drop it with: DROP DATABASE {bench} WITH (FORCE)")
        else:
            harness.teardown(bench)


if __name__ == "__main__":
    main()
