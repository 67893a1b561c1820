"""Reads for the event log viewer and API: keyset pages, estimated counts, timelines, diffs."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL
from psycopg import sql

from events import aggregates, crypto
from events.store import EventStore

PAGE_SIZE = 50
PAIR_RANDOM_PAGE_COST = "1.1"  # the usual SSD value, for pages filtered on two columns or more


@dataclass
class EventFilters:
    tenant_id: uuid.UUID | None = None
    aggregate_type: str = ""
    aggregate_id: str = ""
    event_type: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    correlation_id: uuid.UUID | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def equality_count(self) -> int:
        """Filters that pin a column to one value (the time range does not)."""
        return sum(
            1
            for value in (self.tenant_id, self.aggregate_type, self.aggregate_id, self.event_type)
            + (self.correlation_id, self.metadata)
            if value
        )

    @property
    def active(self) -> bool:
        return any(
            [self.tenant_id, self.aggregate_type, self.aggregate_id, self.event_type, self.since, self.until]
            + [self.correlation_id, self.metadata]
        )


@dataclass
class EventPage:
    events: list[Any]
    next_before: int | None  # keyset cursor for the next (older) page
    newest_cursor: tuple[int, int]  # feed cursor for the live tail


def _apply(qs: Any, f: EventFilters, *, tenant_scoped: bool) -> Any:
    if f.tenant_id and not tenant_scoped:
        qs = qs.filter(tenant_id=f.tenant_id)
    if f.aggregate_type:
        qs = qs.filter(aggregate_type=f.aggregate_type)
    if f.aggregate_id:
        qs = qs.filter(aggregate_id=f.aggregate_id)
    if f.event_type:
        qs = qs.filter(event_type=f.event_type)
    if f.since:
        qs = qs.filter(occurred_at__gte=f.since)
    if f.until:
        qs = qs.filter(occurred_at__lte=f.until)
    if f.correlation_id:
        qs = qs.filter(correlation_id=f.correlation_id)
    if f.metadata:
        qs = qs.filter(event_metadata__contains=f.metadata)  # GIN (jsonb_path_ops) on event_metadata
    return qs


def event_page_queryset(*, store: EventStore, alias: str, filters: EventFilters, before: int | None = None) -> Any:
    """The viewer's page query (unsliced), for `event_page` and for the test that EXPLAINs every filter.

    Newest first by event_id; with a time filter newest first by (occurred_at, event_id) instead, so a
    time range is one short range of the (occurred_at, event_id) index however deep it lies (event_id
    order would scan every newer event or sort every event in the range). The cursor stays an event_id
    either way: a time-ordered page continues after that event's (occurred_at, event_id).
    """
    model = store.event_model.objects.using(alias)
    qs = _apply(model, filters, tenant_scoped=store.tenant_scoped)
    if not (filters.since or filters.until):
        if before:
            qs = qs.filter(event_id__lt=before)
        return qs.order_by("-event_id")
    if before:
        anchor = model.filter(event_id=before).values_list("occurred_at", flat=True).first()
        if anchor is None:  # the cursor's event is not in this log: nothing older to show
            return qs.none()
        qs = qs.filter(occurred_at__lte=anchor).filter(Q(occurred_at__lt=anchor) | Q(event_id__lt=before))
    return qs.order_by("-occurred_at", "-event_id")


def ssd_costing(*, store: EventStore, filters: EventFilters) -> bool:
    """Whether the page is planned with PAIR_RANDOM_PAGE_COST: two filters or more pin a column — in a
    tenant's log RLS's tenant_id is one of them."""
    return filters.equality_count + (1 if store.tenant_scoped else 0) >= 2


PARTNERS = (  # (term prefix, filter attribute, column) of the filters the terms index pairs with metadata
    ("t", "tenant_id", "tenant_id"),
    ("a", "aggregate_type", "aggregate_type"),
    ("i", "aggregate_id", "aggregate_id"),
    ("e", "event_type", "event_type"),
    ("c", "correlation_id", "correlation_id"),
)
DENSE = 0.3  # a partner value on this share of the log or more is left out of the intersection


def viewer_terms(filters: EventFilters, *, dense: frozenset[str] = frozenset()) -> list[str] | None:
    """The control log's `events_viewer_terms` (migration events/0005) a page must contain, when the
    filters pair a metadata value with another equality filter that is not `dense`; None otherwise."""
    if not filters.metadata or filters.equality_count < 2:
        return None
    if not all(isinstance(value, str) for value in filters.metadata.values()):
        return None
    terms = [
        f"{prefix}:{value}"
        for prefix, attribute, _column in PARTNERS
        if (value := getattr(filters, attribute)) and attribute not in dense
    ]
    if not terms:
        return None
    # As jsonb prints a key and a string (json.dumps escapes the same characters, non-ASCII kept as is).
    terms += [
        f"m:{json.dumps(key, ensure_ascii=False)}={json.dumps(value, ensure_ascii=False)}"
        for key, value in filters.metadata.items()
    ]
    return terms


def _dense_partners(alias: str, store: EventStore, filters: EventFilters) -> frozenset[str]:
    """The partner filters whose value covers DENSE of the log or more, by the planner's statistics.

    Intersecting with such a value reads its whole posting list (0.3–0.5 s for an aggregate type on
    every row of 10M) and narrows nothing: the metadata value alone is as selective, which is the
    ordinary page (a metadata filter alone is within target)."""
    wanted = {column: str(value) for _p, attribute, column in PARTNERS if (value := getattr(filters, attribute))}
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT attname, most_common_vals::text::text[], most_common_freqs FROM pg_stats "
            "WHERE schemaname = current_schema() AND tablename = %s AND attname = ANY(%s)",
            [store.event_model._meta.db_table, list(wanted)],
        )
        rows = cursor.fetchall()
    dense = set()
    for column, values, freqs in rows:
        if values and wanted[column] in values and freqs[values.index(wanted[column])] >= DENSE:
            dense.add(next(a for _p, a, c in PARTNERS if c == column))
    return frozenset(dense)


TERMS_SQL = (
    "events_viewer_terms(tenant_id, aggregate_type, aggregate_id, event_type, correlation_id, event_metadata)"
    " @> %s::text[]"
)
TERMS_CAP = 200  # matches read through the terms index before the page falls back to the ordered walk


def terms_queryset(*, alias: str, store: EventStore, filters: EventFilters, before: int | None) -> Any:
    """The event_ids matching `filters` read through the terms index (see _terms_candidates); None
    when the filters do not pair a metadata value with another equality filter."""
    if store.tenant_scoped or viewer_terms(filters) is None:  # the terms index is the control log's (0005)
        return None
    terms = viewer_terms(filters, dense=_dense_partners(alias, store, filters))
    if terms is None:
        return None
    # Not the metadata filter itself: its terms are the same test, and with it the planner also ANDs in
    # the metadata GIN's bitmap (every row holding that value: 16 ms of 30 for a common one at 10M).
    without_metadata = dataclasses.replace(filters, metadata={})
    qs = _apply(store.event_model.objects.using(alias), without_metadata, tenant_scoped=False).order_by()
    qs = qs.filter(RawSQL(TERMS_SQL, (terms,), output_field=BooleanField()))  # the index's own expression
    if before and not (filters.since or filters.until):  # a time-ordered page applies its cursor later
        qs = qs.filter(event_id__lt=before)
    return qs.values_list("event_id", flat=True)


BITMAP_ONLY = "SELECT set_config('enable_indexscan', %s, true), set_config('enable_seqscan', %s, true)"


def _terms_candidates(alias: str, store: EventStore, filters: EventFilters, before: int | None) -> list[int] | None:
    """Every matching event_id when there are at most TERMS_CAP of them, else None.

    One intersection of the values' posting lists inside the terms index (planned as a bitmap scan for
    this transaction's statement only: PostgreSQL estimates a pair as independent and would walk one
    value's btree, reading millions of rows when the two never meet), then the other filters on those
    rows only."""
    qs = terms_queryset(alias=alias, store=store, filters=filters, before=before)
    if qs is None:
        return None
    with connections[alias].cursor() as cursor:
        cursor.execute(BITMAP_ONLY, ["off", "off"])
        ids = list(qs[: TERMS_CAP + 1])
        cursor.execute(BITMAP_ONLY, ["on", "on"])
    return ids if len(ids) <= TERMS_CAP else None


def event_page(
    *, store: EventStore, filters: EventFilters, before: int | None = None, limit: int = PAGE_SIZE
) -> EventPage:
    """Newest first, `limit` rows after the cursor `before` (an event_id; see event_page_queryset).

    Keyset pagination: the cost does not grow with the depth of the page (no OFFSET, no COUNT(*)).
    """
    pair = ssd_costing(store=store, filters=filters)
    with store.session() as alias, transaction.atomic(using=alias) if pair else contextlib.nullcontext():
        if pair:
            # Two filters: PostgreSQL estimates their combination as independent, so with the default
            # random_page_cost (4, spinning disks) it walks the primary key expecting a match soon, and
            # reads the whole log when the two common values never meet. Costed as on SSDs (for this
            # transaction only), it takes the pair's index (events_event_tenant_type, …).
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT set_config('random_page_cost', %s, true)", [PAIR_RANDOM_PAGE_COST])
        qs = event_page_queryset(store=store, alias=alias, filters=filters, before=before)
        # A metadata value paired with another filter (control log): its matches through the terms index
        # when they are few; when there are more than TERMS_CAP, the ordered walk meets one soon enough.
        candidates = _terms_candidates(alias, store, filters, before)
        if candidates is not None:
            qs = qs.filter(event_id__in=candidates) if candidates else qs.none()
        rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    newest = store.feed_head()
    return EventPage(events=rows, next_before=rows[-1].event_id if more and rows else None, newest_cursor=newest)


def event_tail(
    *, store: EventStore, filters: EventFilters, after: tuple[int, int], limit: int = 100
) -> tuple[list, tuple]:
    """Events committed after the feed cursor `after` that match the filters, newest first, and the new cursor."""
    events = store.feed(after=after, limit=limit)
    cursor = (events[-1].tx_id, events[-1].event_id) if events else after
    matched = [e for e in events if _matches(e, filters, store.tenant_scoped)]
    return list(reversed(matched)), cursor


def _matches(e: Any, f: EventFilters, tenant_scoped: bool) -> bool:
    return (
        (not f.tenant_id or tenant_scoped or e.tenant_id == f.tenant_id)
        and (not f.aggregate_type or e.aggregate_type == f.aggregate_type)
        and (not f.aggregate_id or e.aggregate_id == f.aggregate_id)
        and (not f.event_type or e.event_type == f.event_type)
        and (not f.since or e.occurred_at >= f.since)
        and (not f.until or e.occurred_at <= f.until)
        and (not f.correlation_id or e.correlation_id == f.correlation_id)
        and all(e.event_metadata.get(k) == v for k, v in f.metadata.items())
    )


def estimated_total(store: EventStore) -> int:
    return store.estimated_count()


def exact_total(store: EventStore) -> int:
    """Events in this store as its context sees them (a tenant's log: only that tenant's, under RLS)."""
    with store.session() as alias:
        return store.event_model.objects.using(alias).count()


DISTINCT_VALUES = """
WITH RECURSIVE t(v) AS (
    (SELECT {col} FROM {table} ORDER BY {col} LIMIT 1)
    UNION ALL
    SELECT (SELECT {col} FROM {table} WHERE {col} > t.v ORDER BY {col} LIMIT 1) FROM t WHERE t.v IS NOT NULL
)
SELECT v FROM t WHERE v IS NOT NULL LIMIT %s
"""


def type_choices(store: EventStore, *, limit: int = 300) -> dict[str, list[str]]:
    """The aggregate and event types that occur in this log, for the viewer's filter menus.

    One index probe per distinct value (a skip scan written as a recursive query): `SELECT DISTINCT`
    read every entry of the type index, 0.3 s per page view at a million events (bench_scale.py)."""
    out: dict[str, list[str]] = {}
    with store.session() as alias, connections[alias].cursor() as cursor:
        for key, column in (("aggregate_types", "aggregate_type"), ("event_types", "event_type")):
            col = sql.Identifier(column).as_string(None)
            cursor.execute(DISTINCT_VALUES.format(col=col, table=store.table_sql), [limit])
            out[key] = [row[0] for row in cursor.fetchall()]
    return out


def event_get(*, store: EventStore, event_id: int) -> Any | None:
    return store.get(event_id)


def event_by_uuid(*, store: EventStore, event_uuid: Any) -> Any | None:
    with store.session() as alias:
        return store.event_model.objects.using(alias).filter(event_uuid=event_uuid).first()


def causation_chain(*, store: EventStore, event: Any, depth: int = 20) -> dict[str, list[Any]]:
    """Ancestors (what caused this, up to the root), direct consequences, and the correlation group."""
    with store.session() as alias:
        model = store.event_model.objects.using(alias)
        ancestors: list[Any] = []
        current = event
        while current.causation_id and len(ancestors) < depth:
            parent = model.filter(event_uuid=current.causation_id).first()
            if parent is None:
                break
            ancestors.append(parent)
            current = parent
        caused = list(model.filter(causation_id=event.event_uuid).order_by("event_id")[:50])
        correlated = (
            list(model.filter(correlation_id=event.correlation_id).order_by("event_id")[:100])
            if event.correlation_id
            else []
        )
    return {"ancestors": list(reversed(ancestors)), "caused": caused, "correlated": correlated}


@dataclass
class FieldChange:
    path: str
    before: Any
    after: Any
    event: Any  # the last event in (t1, t2] that changed this field


def state_diff(*, store: EventStore, aggregate_type: str, aggregate_id: str, t1: dt.datetime, t2: dt.datetime) -> dict:
    """States at t1 and t2 and every top-level field that differs, linked to the event that last changed it."""
    if t2 < t1:
        t1, t2 = t2, t1
    start = store.state_at(aggregate_type, aggregate_id, t1, decrypt=False)
    with store.session() as alias:
        later = [e for e in store.stream(aggregate_type, aggregate_id, after_version=start.version, until=t2)]
        spec = aggregates.spec_for(aggregate_type)
        state, changed_by = dict(start.state), {}
        for event in later:
            new = spec.apply(state, event)
            for key in set(state) | set(new):
                if state.get(key, _MISSING) != new.get(key, _MISSING):
                    changed_by[key] = event
            state = new
        before = crypto.decrypt_tree(start.state, store, alias=alias)
        after = crypto.decrypt_tree(state, store, alias=alias)
    changes = [
        FieldChange(path=key, before=before.get(key), after=after.get(key), event=changed_by[key])
        for key in sorted(changed_by)
        if json.dumps(before.get(key), sort_keys=True, default=str)
        != json.dumps(after.get(key), sort_keys=True, default=str)
    ]
    return {"t1": t1, "t2": t2, "before": before, "after": after, "changes": changes, "events": later}


_MISSING = object()
