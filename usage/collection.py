"""Usage collection: every tenant, every isolation level, into hourly and daily rollups.

One run (the `usage.collect` job, started by beat) does three passes:

1. **Read** each tenant inside its own tenant_context (app role, RLS applies): rows per data-plane
   table in one query, its events per hour for the *open window* (the previous and the current hour,
   recounted on every run through the index on (tenant_id, occurred_at)) plus the hours that left the
   window since the last run (counted once, then frozen into `UsageState.events_frozen`), and — for
   dedicated databases — `pg_database_size`. Own-schema placements are sized in one catalog query.
2. **Size pool tenants**: a pool's tables are shared, so a tenant's storage is estimated as its
   share of each table's rows times that table's size, and is marked `storage_estimated`.
3. **Write** in chunks, one control-plane transaction each: the tenant's frozen mark is re-checked
   under a row lock (a concurrent run that froze first wins; this one skips the tenant), the window's
   event counts, standing figures (members, rows, storage) and the requests/latency read from the
   shared cache (core.requestmeter) *overwrite* their hours — totals, never increments — and the
   touched days are recomputed from their hours. A worker that dies anywhere leaves either nothing
   or a whole chunk written; the retry finishes the job with the same totals.

Why counts by `occurred_at` and not the event store's gap-safe `(tx_id, event_id)` feed: that feed
waits for the oldest transaction of the whole PostgreSQL *cluster* (`pg_snapshot_xmin`), so one long
transaction in any database stalls it; recounting an open window is idempotent and only misses an
event whose transaction stays open for more than an hour. The cost of a run grows with the number of
tenants and with the events of the window, not with the length of the history.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import Sum
from django.utils import timezone
from psycopg import sql

from core import requestmeter
from core.quotas import quota_for
from core.rls import GUC
from tenants.context import search_path_for, tenant_context
from tenants.models import Placement, Tenant
from usage.models import UsageDaily, UsageHourly, UsageState

logger = logging.getLogger(__name__)

COLLECTED_STATUSES = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED, Tenant.Status.MOVING)
EVENT_TABLE = "tenantlog_event"
MEMBER_TABLE = "workspace_member"
CHUNK = 200
READ_CHUNK = 500


def data_plane_tables() -> list[str]:
    """Every TENANT_APPS table (they all carry tenant_id), except the event log, counted incrementally."""
    tables = []
    for label in settings.TENANT_APPS:
        for model in apps.get_app_config(label.rsplit(".", 1)[-1]).get_models():
            if model._meta.managed and not model._meta.proxy and model._meta.db_table != EVENT_TABLE:
                tables.append(model._meta.db_table)
    return sorted(set(tables))


@dataclass
class Reading:
    tenant: Tenant
    rows: dict[str, int] = field(default_factory=dict)
    frozen_before: dt.datetime | None = None  # the state's frozen mark when read
    frozen_after: dt.datetime | None = None  # the start of the open window
    newly_frozen: int = 0  # events of the hours that left the window since the last run
    window: dict[dt.datetime, int] = field(default_factory=dict)  # open hour → events in it
    last_event_at: dt.datetime | None = None
    storage_bytes: int = 0
    storage_estimated: bool = False


def _hour(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def _reading_sql(tables: list[str]) -> sql.Composed:
    """One statement, one row: rows of every table, then the event log's frozen/previous/current counts
    and its newest event (all under the tenant's RLS setting; the event filter also uses its index)."""
    counts = [sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(t)) for t in tables]
    events = sql.SQL(
        "SELECT count(*) FILTER (WHERE occurred_at < %(window)s) AS frozen, "
        "count(*) FILTER (WHERE occurred_at >= %(window)s AND occurred_at < %(hour)s) AS previous, "
        "count(*) FILTER (WHERE occurred_at >= %(hour)s) AS current, max(occurred_at) AS last "
        "FROM {} WHERE tenant_id = %(tenant)s AND occurred_at >= %(since)s"
    ).format(sql.Identifier(EVENT_TABLE))
    return sql.SQL("SELECT {}, e.frozen, e.previous, e.current, e.last FROM ({}) e").format(
        sql.SQL(", ").join(counts), events
    )


_BEGINNING = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _read(cursor: Any, reading: Reading, hour: dt.datetime, tables: list[str], statement: sql.Composed) -> None:
    window = hour - dt.timedelta(hours=1)
    since = reading.frozen_before or _BEGINNING
    cursor.execute(statement, {"window": max(window, since), "hour": hour, "tenant": reading.tenant.pk, "since": since})
    row = cursor.fetchone()
    reading.rows = {name: int(n) for name, n in zip(tables, row[: len(tables)], strict=True)}
    frozen, previous, current, last = row[len(tables) :]
    reading.newly_frozen = int(frozen)
    reading.window = {window: int(previous), hour: int(current)}
    reading.last_event_at = last


def read_tenant(tenant: Tenant, frozen_until: dt.datetime | None, hour: dt.datetime, tables: list[str]) -> Reading:
    """One tenant in its own tenant_context (dedicated databases: also the database's size)."""
    reading = Reading(tenant=tenant, frozen_before=frozen_until, frozen_after=hour - dt.timedelta(hours=1))
    with tenant_context(tenant) as alias, connections[alias].cursor() as c:
        _read(c, reading, hour, tables, _reading_sql(tables))
        if tenant.placement is not None and tenant.placement.kind == Placement.Kind.DATABASE:
            c.execute("SELECT pg_database_size(current_database())")
            reading.storage_bytes = int(c.fetchone()[0])
    return reading


def read_many(tenants: list[Tenant], frozen: dict[Any, dt.datetime | None], hour: dt.datetime,
              tables: list[str]) -> list[Reading]:  # fmt: skip
    """Tenants of the control-plane server (pools and own schemas) in one transaction of the app role,
    switching the transaction-local tenant setting and search_path per tenant — exactly what
    tenant_context applies, gone when the transaction ends — so a tenant costs two round trips
    instead of a transaction of its own. Raises DatabaseError if any read fails (the caller then
    reads that batch one tenant at a time)."""
    readings: list[Reading] = []
    statement = _reading_sql(tables)
    window = hour - dt.timedelta(hours=1)
    with transaction.atomic(using="default"), connections["default"].cursor() as c:
        for tenant in tenants:
            assert tenant.placement is not None
            reading = Reading(tenant=tenant, frozen_before=frozen.get(tenant.pk), frozen_after=window)
            c.execute(
                "SELECT set_config(%s, %s, true), set_config('search_path', %s, true)",
                [GUC, str(tenant.pk), search_path_for(tenant.placement.schema_name)],
            )
            _read(c, reading, hour, tables, statement)
            readings.append(reading)
        c.execute("SELECT set_config(%s, '', true), set_config('search_path', 'public, pg_temp', true)", [GUC])
    return readings


def events_total(state: UsageState | None, reading: Reading) -> int:
    frozen = 0 if state is None or reading.frozen_before is None else state.events_frozen
    return frozen + reading.newly_frozen + sum(reading.window.values())


def _schema_sizes(schemas: list[str]) -> dict[str, int]:
    if not schemas:
        return {}
    with connections["default"].cursor() as c:
        c.execute(
            "SELECT n.nspname, coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'm') "
            "AND n.nspname = ANY(%s) GROUP BY n.nspname",
            [schemas],
        )
        return {name: int(size) for name, size in c.fetchall()}


def _pool_table_sizes(schemas: list[str], tables: list[str]) -> dict[tuple[str, str], int]:
    if not schemas:
        return {}
    with connections["default"].cursor() as c:
        c.execute(
            "SELECT n.nspname, c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
            "AND n.nspname = ANY(%s) AND c.relname = ANY(%s)",
            [schemas, tables],
        )
        return {(schema, table): int(size) for schema, table, size in c.fetchall()}


def _placement(reading: Reading) -> Placement:
    placement = reading.tenant.placement
    assert placement is not None  # only tenants with a placement are read
    return placement


def _size(readings: list[Reading], event_totals: dict[Any, int], tables: list[str]) -> None:
    own = [r for r in readings if _placement(r).kind == Placement.Kind.SCHEMA]
    sizes = _schema_sizes(sorted({_placement(r).schema_name for r in own}))
    for r in own:
        r.storage_bytes = sizes.get(_placement(r).schema_name, 0)
    pooled = [r for r in readings if _placement(r).kind == Placement.Kind.POOL]
    all_tables = [*tables, EVENT_TABLE]
    table_sizes = _pool_table_sizes(sorted({_placement(r).schema_name for r in pooled}), all_tables)
    # Rows of every table per pool, summed over the tenants read in this run (exact: each is counted under RLS).
    pool_rows: dict[tuple[str, str], int] = defaultdict(int)
    for r in pooled:
        for table, n in {**r.rows, EVENT_TABLE: event_totals.get(r.tenant.pk, 0)}.items():
            pool_rows[(_placement(r).schema_name, table)] += n
    for r in pooled:
        schema = _placement(r).schema_name
        estimate = 0.0
        for table, n in {**r.rows, EVENT_TABLE: event_totals.get(r.tenant.pk, 0)}.items():
            total = pool_rows[(schema, table)]
            if total:
                estimate += table_sizes.get((schema, table), 0) * n / total
        r.storage_bytes = int(estimate)
        r.storage_estimated = True


def _merge_buckets(rows: Iterable[Any]) -> list[int]:
    merged = [0] * requestmeter.BUCKETS
    for row in rows:
        for i, n in enumerate(row.latency_buckets or []):
            if i < len(merged):
                merged[i] += int(n)
    return merged


@dataclass
class Outcome:
    tenants: int = 0
    written: int = 0
    skipped: int = 0
    failed: int = 0
    events: int = 0
    requests: int = 0


def collect(*, now: dt.datetime | None = None, tenant_ids: list[Any] | None = None,
            progress: Callable[[int, int], None] | None = None) -> Outcome:  # fmt: skip
    """One collection run over every collected tenant (or `tenant_ids`); safe to run again at any time."""
    now = now or timezone.now()
    tenants = list(
        Tenant.objects.filter(status__in=COLLECTED_STATUSES, placement__isnull=False)
        .select_related("placement")
        .order_by("pk")
    )
    if tenant_ids is not None:
        wanted = {str(t) for t in tenant_ids}
        tenants = [t for t in tenants if str(t.pk) in wanted]
    outcome = Outcome(tenants=len(tenants))
    tables = data_plane_tables()
    states = {s.tenant_id: s for s in UsageState.objects.filter(tenant__in=tenants)}
    hour = _hour(now)
    readings: list[Reading] = []
    failed: list[tuple[Tenant, str]] = []
    frozen = {t.pk: (states[t.pk].frozen_until if t.pk in states else None) for t in tenants}
    local = [t for t in tenants if t.placement is not None and t.placement.database_alias == "default"]
    local_ids = {t.pk for t in local}
    one_by_one = [t for t in tenants if t.pk not in local_ids]
    for start in range(0, len(local), READ_CHUNK):
        batch = local[start : start + READ_CHUNK]
        try:
            readings += read_many(batch, frozen, hour, tables)
        except DatabaseError:
            one_by_one += batch  # find the one that fails; the others are still read
        if progress:
            progress(start + len(batch), len(tenants) * 2)
    for tenant in one_by_one:
        try:
            readings.append(read_tenant(tenant, frozen[tenant.pk], hour, tables))
        except Exception as exc:  # one unreachable database never stops the others
            failed.append((tenant, str(exc)))
    for tenant, error in failed:
        logger.warning("usage: could not read %s: %s", tenant.slug, error)
        outcome.failed += 1
        UsageState.objects.update_or_create(tenant=tenant, defaults={"error": error[:300]})
    event_totals = {r.tenant.pk: events_total(states.get(r.tenant.pk), r) for r in readings}
    _size(readings, event_totals, tables)
    request_hours = {
        h: requestmeter.read_hour(int(h.timestamp()) // 3600) for h in (hour - dt.timedelta(hours=1), hour)
    }
    for start in range(0, len(readings), CHUNK):
        chunk = readings[start : start + CHUNK]
        written, skipped, events, requests = _write_chunk(chunk, now=now, hour=hour, request_hours=request_hours)
        outcome.written += written
        outcome.skipped += skipped
        outcome.events += events
        outcome.requests += requests
        _flag_storage(chunk)
        if progress:
            progress(len(tenants) + start + len(chunk), len(tenants) * 2)
    return outcome


def _write_chunk(
    chunk: list[Reading], *, now: dt.datetime, hour: dt.datetime, request_hours: dict[dt.datetime, dict[str, Any]]
) -> tuple[int, int, int, int]:
    written = skipped = events = requests = 0
    ids = [r.tenant.pk for r in chunk]
    with transaction.atomic():
        # Every state row exists before it is locked.
        UsageState.objects.bulk_create([UsageState(tenant_id=t) for t in ids], ignore_conflicts=True)
        states = {s.tenant_id: s for s in UsageState.objects.select_for_update().filter(tenant_id__in=ids)}
        hours_touched = {hour, hour - dt.timedelta(hours=1)}
        existing = {
            (row.tenant_id, row.hour): row
            for row in UsageHourly.objects.filter(tenant_id__in=ids, hour__in=hours_touched)
        }
        hourly: dict[tuple[Any, dt.datetime], UsageHourly] = {}
        for r in chunk:
            state = states[r.tenant.pk]
            if state.frozen_until != r.frozen_before:
                skipped += 1  # another run froze these hours first; the next run reads again
                continue
            total_events = events_total(state, r)
            key = str(r.tenant.pk)
            last_request = max((request_hours[h].get(key, {}).get("last", 0.0) for h in request_hours), default=0.0)
            activity = [state.last_activity_at, r.last_event_at]
            if last_request:
                activity.append(dt.datetime.fromtimestamp(last_request, tz=dt.UTC))
            last_activity = max(filter(None, activity), default=None)
            standing: dict[str, Any] = {
                "members": r.rows.get(MEMBER_TABLE, 0),
                "rows": {**r.rows, EVENT_TABLE: total_events},
                "total_rows": sum(r.rows.values()) + total_events,
                "storage_bytes": r.storage_bytes,
                "storage_estimated": r.storage_estimated,
                "events_total": total_events,
                "last_activity_at": last_activity,
                "collected_at": now,
            }

            def row_for(h: dt.datetime, r: Reading = r, standing: dict = standing) -> UsageHourly:
                k = (r.tenant.pk, h)
                if k not in hourly:
                    hourly[k] = existing.get(k) or UsageHourly(tenant_id=r.tenant.pk, hour=h, **standing)
                return hourly[k]

            current = row_for(hour)
            for name, value in standing.items():
                setattr(current, name, value)
            for h, n in r.window.items():
                if n or (r.tenant.pk, h) in existing or h == hour:
                    row_for(h).events_appended = n
            events += r.window.get(hour, 0)
            for h, figures in request_hours.items():
                entry = figures.get(key)
                if entry is None and (r.tenant.pk, h) not in existing and h != hour:
                    continue
                row = row_for(h)
                row.requests = int(entry["requests"]) if entry else 0
                row.latency_buckets = entry["buckets"] if entry else [0] * requestmeter.BUCKETS
                row.p50_ms = requestmeter.percentile(row.latency_buckets, 0.5)
                row.p95_ms = requestmeter.percentile(row.latency_buckets, 0.95)
                row.collected_at = now
                if h == hour and entry:
                    requests += row.requests
            state.events_frozen = total_events - sum(r.window.values())
            state.frozen_until = r.frozen_after
            state.events_total = total_events
            state.members = standing["members"]
            state.total_rows = standing["total_rows"]
            state.storage_bytes = r.storage_bytes
            state.storage_estimated = r.storage_estimated
            state.last_activity_at = last_activity
            state.collected_at = now
            state.error = ""
            written += 1
        fields = [f.name for f in UsageHourly._meta.concrete_fields if f.name not in ("id", "tenant", "hour")]
        UsageHourly.objects.bulk_create(
            list(hourly.values()), update_conflicts=True, unique_fields=["tenant", "hour"], update_fields=fields
        )
        days = sorted({h.date() for (_, h) in hourly})
        _rollup_days([t for t in ids if any(k[0] == t for k in hourly)], days, now)
        _refresh_states(states, now)
        UsageState.objects.bulk_create(
            list(states.values()),
            update_conflicts=True,
            unique_fields=["tenant"],
            update_fields=[f.name for f in UsageState._meta.concrete_fields if f.name != "tenant"],
        )
    return written, skipped, events, requests


def _flag_storage(chunk: list[Reading]) -> None:
    """Mark (or clear) tenants whose storage reached their plan's quota; the workspace refuses growth then."""
    over, under = [], []
    for r in chunk:
        limit = quota_for(r.tenant.plan, "storage_bytes")
        exceeded = "storage_bytes" in (r.tenant.quotas_exceeded or [])
        if limit is not None and r.storage_bytes >= limit and not exceeded:
            over.append(r.tenant)
        elif (limit is None or r.storage_bytes < limit) and exceeded:
            under.append(r.tenant)
    for tenant in over:
        Tenant.objects.filter(pk=tenant.pk).update(quotas_exceeded=[*(tenant.quotas_exceeded or []), "storage_bytes"])
    for tenant in under:
        rest = [q for q in tenant.quotas_exceeded if q != "storage_bytes"]
        Tenant.objects.filter(pk=tenant.pk).update(quotas_exceeded=rest)


def _rollup_days(tenant_ids: list[Any], days: list[dt.date], now: dt.datetime) -> None:
    """Recompute each touched day of each tenant from its hours (totals, so a rerun writes the same)."""
    if not tenant_ids or not days:
        return
    start = dt.datetime.combine(days[0], dt.time.min, tzinfo=dt.UTC)
    end = dt.datetime.combine(days[-1], dt.time.min, tzinfo=dt.UTC) + dt.timedelta(days=1)
    grouped: dict[tuple[Any, dt.date], list[UsageHourly]] = defaultdict(list)
    for row in UsageHourly.objects.filter(tenant_id__in=tenant_ids, hour__gte=start, hour__lt=end).order_by("hour"):
        grouped[(row.tenant_id, row.hour.astimezone(dt.UTC).date())].append(row)
    daily = []
    for (tenant_id, day), rows in grouped.items():
        latest = rows[-1]
        buckets = _merge_buckets(rows)
        daily.append(
            UsageDaily(
                tenant_id=tenant_id,
                day=day,
                members=latest.members,
                rows=latest.rows,
                total_rows=latest.total_rows,
                storage_bytes=latest.storage_bytes,
                storage_estimated=latest.storage_estimated,
                events_total=latest.events_total,
                events_appended=sum(r.events_appended for r in rows),
                requests=sum(r.requests for r in rows),
                latency_buckets=buckets,
                p50_ms=requestmeter.percentile(buckets, 0.5),
                p95_ms=requestmeter.percentile(buckets, 0.95),
                last_activity_at=max(filter(None, (r.last_activity_at for r in rows)), default=None),
                collected_at=now,
            )
        )
    fields = [f.name for f in UsageDaily._meta.concrete_fields if f.name not in ("id", "tenant", "day")]
    UsageDaily.objects.bulk_create(daily, update_conflicts=True, unique_fields=["tenant", "day"], update_fields=fields)


def _refresh_states(states: dict[Any, UsageState], now: dt.datetime) -> None:
    """Requests in the last 24 hours and storage growth over 7 days: what the tenant list sorts by."""
    ids = list(states)
    since = _hour(now) - dt.timedelta(hours=23)
    requests = dict(
        UsageHourly.objects.filter(tenant_id__in=ids, hour__gte=since)
        .values("tenant_id")
        .annotate(n=Sum("requests"))
        .values_list("tenant_id", "n")
    )
    week_ago = dict(
        UsageDaily.objects.filter(tenant_id__in=ids, day=now.date() - dt.timedelta(days=7)).values_list(
            "tenant_id", "storage_bytes"
        )
    )
    for tenant_id, state in states.items():
        state.requests_24h = int(requests.get(tenant_id) or 0)
        state.growth_7d_bytes = state.storage_bytes - week_ago[tenant_id] if tenant_id in week_ago else 0
