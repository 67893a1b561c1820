"""Every filter of the event viewer, alone and in every combination, is served by an index.

The control-plane log is loaded with a skewed distribution (one tenant, aggregate, event type,
correlation and actor on many rows; others on a handful), ANALYZEd, and the viewer's own page query
(events.selectors.event_page_queryset) is EXPLAINed for all 256 filter combinations with rare values
and with common values, on the first page and on a deep page. No plan may read events_event with a
sequential scan. The rows are loaded by the owner inside the test's transaction (the insert trigger,
which hashes each row, is lifted for the load only) and vanish with it; the plans are made on the
same connection, since the control log has no RLS and the statement is the app role's.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

import pytest
from django.core.exceptions import EmptyResultSet
from django.db import connections

from events import selectors
from events.store import EventStore

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

ROWS = 100_000
BASE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)  # row g occurred at BASE + g seconds
HOT_TENANT, RARE_TENANT = uuid.UUID(int=1), uuid.UUID(int=2)
HOT_CORRELATION, RARE_CORRELATION = uuid.UUID(int=3), uuid.UUID(int=4)

LOAD = """
INSERT INTO events_event (event_uuid, aggregate_type, aggregate_id, version, event_type, event_version,
                          event_data, event_metadata, occurred_at, tenant_id, correlation_id, tx_id, hash)
SELECT gen_random_uuid(),
       CASE WHEN g %% 20000 = 11 THEN 'rare.thing' ELSE 'bulk.thing' END,
       CASE WHEN g %% 20000 = 11 THEN 'rare-' || g WHEN g %% 50 = 0 THEN 'hot' ELSE 'bulk-' || (g / 10) END,
       CASE WHEN g %% 20000 = 11 THEN 1 WHEN g %% 50 = 0 THEN g / 50 ELSE g %% 10 + 1 END,
       CASE WHEN g %% 20000 = 13 THEN 'rare.happened' ELSE 'bulk.' || (g %% 5) END,
       1, '{}',
       CASE WHEN g %% 20000 = 19 THEN jsonb_build_object('request', 'r-rare')
            ELSE jsonb_build_object('actor', 'a' || (g %% 100)) END,
       %(base)s::timestamptz + g * interval '1 second',
       CASE WHEN g %% 10 = 0 THEN %(hot_tenant)s::uuid WHEN g %% 20000 = 7 THEN %(rare_tenant)s::uuid
            ELSE md5((g %% 500)::text)::uuid END,
       CASE WHEN g %% 7 = 0 THEN %(hot_corr)s::uuid WHEN g %% 20000 = 17 THEN %(rare_corr)s::uuid END,
       pg_current_xact_id(), '\\x00'
  FROM generate_series(1, %(rows)s) g
"""

COMMON = {
    "tenant_id": HOT_TENANT,
    "aggregate_type": "bulk.thing",
    "aggregate_id": "hot",
    "event_type": "bulk.3",
    "since": BASE + dt.timedelta(seconds=ROWS * 0.2),
    "until": BASE + dt.timedelta(seconds=ROWS * 0.9),
    "correlation_id": HOT_CORRELATION,
    "metadata": {"actor": "a1"},
}
RARE = {
    "tenant_id": RARE_TENANT,
    "aggregate_type": "rare.thing",
    "aggregate_id": "bulk-1234",
    "event_type": "rare.happened",
    "since": BASE + dt.timedelta(seconds=1000),
    "until": BASE + dt.timedelta(seconds=1060),
    "correlation_id": RARE_CORRELATION,
    "metadata": {"request": "r-rare"},
}
# since and until are one filter in the viewer (a time range), but either may come alone.
FILTERS = ["tenant_id", "aggregate_type", "aggregate_id", "event_type", "since", "until", "correlation_id", "metadata"]


@pytest.fixture
def loaded_log() -> Any:
    owner = connections["owner"]
    with owner.cursor() as cursor:
        cursor.execute("ALTER TABLE events_event DISABLE TRIGGER events_event_before_insert")
        cursor.execute(
            LOAD,
            {
                "base": BASE,
                "hot_tenant": HOT_TENANT,
                "rare_tenant": RARE_TENANT,
                "hot_corr": HOT_CORRELATION,
                "rare_corr": RARE_CORRELATION,
                "rows": ROWS,
            },
        )
        cursor.execute("ALTER TABLE events_event ENABLE TRIGGER events_event_before_insert")
        cursor.execute("ANALYZE events_event")
        cursor.execute("SELECT min(event_id), max(event_id) FROM events_event WHERE aggregate_type = 'bulk.thing'")
        low, high = cursor.fetchone()
    return owner, low + (high - low) // 2


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(plan["Node Type"], plan.get("Relation Name", ""))]
    if "Index Name" in plan:
        found.append(("index", plan["Index Name"]))
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


def _plan(connection: Any, filters: selectors.EventFilters, before: int | None) -> list[tuple[str, str]] | None:
    store = EventStore(alias="owner")
    qs = selectors.event_page_queryset(store=store, alias="owner", filters=filters, before=before)
    try:
        query, params = qs[: selectors.PAGE_SIZE + 1].query.sql_with_params()
    except EmptyResultSet:
        return None  # a cursor outside the log: no query at all
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + query, params)
        return _scans(cursor.fetchone()[0][0]["Plan"])


def test_every_viewer_filter_combination_reads_the_log_through_an_index(loaded_log):
    connection, middle = loaded_log
    seq_scans = []
    checked = 0
    for size in range(len(FILTERS) + 1):
        for names in itertools.combinations(FILTERS, size):
            for values in (RARE, COMMON):
                for before in (None, middle):
                    filters = selectors.EventFilters(**{name: values[name] for name in names})
                    scans = _plan(connection, filters, before)
                    if scans is None:
                        continue
                    checked += 1
                    if ("Seq Scan", "events_event") in scans:
                        label = "rare" if values is RARE else "common"
                        seq_scans.append(f"{'+'.join(names) or 'no filter'} ({label}, before={before}): {scans}")
    assert checked >= 900
    assert not seq_scans, "\n".join(seq_scans)


def test_a_time_range_page_continues_after_its_cursor_in_time_order(loaded_log):
    _, _ = loaded_log
    store = EventStore(alias="owner")
    filters = selectors.EventFilters(since=RARE["since"], until=RARE["until"])
    first = selectors.event_page(store=store, filters=filters, limit=25)
    second = selectors.event_page(store=store, filters=filters, before=first.next_before, limit=25)
    third = selectors.event_page(store=store, filters=filters, before=second.next_before, limit=25)
    seen = [e.occurred_at for e in first.events + second.events + third.events]
    assert len(seen) == 61 and seen == sorted(seen, reverse=True) and len(set(seen)) == 61
    assert seen[0] == RARE["until"] and seen[-1] == RARE["since"] and third.next_before is None


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"tenant_id": HOT_TENANT, "event_type": "bulk.3"}, "events_event_tenant_type"),  # g % 10 = 0 vs g % 5 = 3
        ({"aggregate_id": "hot", "event_type": "bulk.3"}, "events_event_aggid_type"),  # g % 50 = 0 vs g % 5 = 3
    ],
)
def test_two_common_values_that_never_meet_are_read_through_their_pair_index(loaded_log, filters, index):
    connection, _ = loaded_log
    with connection.cursor() as cursor:  # what event_page does for two filters or more
        cursor.execute("SELECT set_config('random_page_cost', %s, true)", [selectors.PAIR_RANDOM_PAGE_COST])
    assert ("index", index) in (_plan(connection, selectors.EventFilters(**filters), None) or [])


COLUMN = {  # a schema cloned from the template names its indexes itself: match their columns
    "aggregate_type": "aggregate_type",
    "aggregate_id": "aggregate_id",
    "event_type": "event_type",
    "since": "occurred_at",
    "until": "occurred_at",
    "correlation_id": "correlation_id",
}
TENANT_FILTERS = ["aggregate_type", "aggregate_id", "event_type", "since", "until", "correlation_id", "metadata"]


@pytest.mark.django_db(databases="__all__")
def test_every_filter_combination_in_a_tenants_own_log_reads_it_through_an_index(tenant_world):
    """The same check in a pool's tenant log, under RLS (FORCE'd, so the owner is subject to it too)."""
    from psycopg import sql

    from tenants.logs import tenant_log_store

    tenant, neighbour = tenant_world["shared"]
    schema = tenant.placement.schema_name
    store = tenant_log_store(tenant)
    owner = connections["owner"]
    with owner.cursor() as cursor:
        cursor.execute(sql.SQL("SET LOCAL search_path = {}, public, pg_temp").format(sql.Identifier(schema)))
        cursor.execute("ALTER TABLE tenantlog_event DISABLE TRIGGER tenantlog_event_before_insert")
        load = LOAD.replace("events_event", "tenantlog_event")
        for who in (tenant.pk, neighbour.pk):  # both tenants' rows share the pool's table
            cursor.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(who)])  # RLS WITH CHECK
            cursor.execute(
                load.replace("tenant_id, correlation_id", "correlation_id, tenant_id").replace(
                    "CASE WHEN g %% 10 = 0 THEN %(hot_tenant)s::uuid WHEN g %% 20000 = 7 THEN %(rare_tenant)s::uuid\n"
                    "            ELSE md5((g %% 500)::text)::uuid END,\n"
                    "       CASE WHEN g %% 7 = 0 THEN %(hot_corr)s::uuid WHEN g %% 20000 = 17 THEN %(rare_corr)s::uuid END,",
                    "CASE WHEN g %% 7 = 0 THEN %(hot_corr)s::uuid WHEN g %% 20000 = 17 THEN %(rare_corr)s::uuid END,\n"
                    "       %(who)s::uuid,",
                ),
                {
                    "base": BASE,
                    "hot_corr": HOT_CORRELATION,
                    "rare_corr": RARE_CORRELATION,
                    "rows": ROWS // 2,
                    "who": who,
                },
            )
        cursor.execute("ALTER TABLE tenantlog_event ENABLE TRIGGER tenantlog_event_before_insert")
        cursor.execute("ANALYZE tenantlog_event")
        cursor.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(tenant.pk)])
    seq_scans, checked = [], 0
    for size in range(len(TENANT_FILTERS) + 1):
        for names in itertools.combinations(TENANT_FILTERS, size):
            for values in (RARE, COMMON):
                filters = selectors.EventFilters(**{name: values[name] for name in names})
                qs = selectors.event_page_queryset(store=store, alias="owner", filters=filters)
                query, params = qs[: selectors.PAGE_SIZE + 1].query.sql_with_params()
                cost = selectors.PAIR_RANDOM_PAGE_COST if selectors.ssd_costing(store=store, filters=filters) else "4"
                with owner.cursor() as cursor:  # planned as event_page plans it
                    cursor.execute("SELECT set_config('random_page_cost', %s, true)", [cost])
                    cursor.execute("EXPLAIN (FORMAT JSON) " + query, params)
                    scans = _scans(cursor.fetchone()[0][0]["Plan"])
                checked += 1
                if ("Seq Scan", "tenantlog_event") in scans:
                    seq_scans.append(f"{'+'.join(names) or 'no filter'}: {scans}")
                # Every index here starts with tenant_id (RLS), so "no sequential scan" alone would also
                # pass by walking the tenant's rows: a rare value must be read through its own index.
                # metadata is left out: PostgreSQL has no statistics for jsonb containment, estimates a
                # rare value at a fixed fraction and walks the tenant's rows (docs/events.md, known limits).
                if size == 1 and values is RARE and names[0] != "metadata":
                    used = [name for kind, name in scans if kind == "index"]
                    with owner.cursor() as cursor:
                        cursor.execute("SELECT pg_get_indexdef(%s::regclass)", [used[0] if used else "-"])
                        definition = cursor.fetchone()[0] if used else ""
                    column = COLUMN[names[0]]  # the filter's column leads the index, right after tenant_id
                    if f"(tenant_id, {column}" not in definition and f"({column}" not in definition:
                        seq_scans.append(f"{names[0]} (rare) not through an index on it: {scans} {definition}")
    assert checked == 2 ** len(TENANT_FILTERS) * 2
    assert not seq_scans, "\n".join(seq_scans)


METADATA_PARTNERS = ["tenant_id", "aggregate_type", "aggregate_id", "event_type", "correlation_id"]


def test_a_metadata_value_paired_with_another_filter_shows_the_same_page_as_the_plain_query(loaded_log):
    _, middle = loaded_log
    store = EventStore(alias="owner")
    compared = 0
    for partner in METADATA_PARTNERS:
        for meta_values, partner_values in itertools.product((RARE, COMMON), repeat=2):
            for before in (None, middle):
                filters = selectors.EventFilters(metadata=meta_values["metadata"], **{partner: partner_values[partner]})
                page = selectors.event_page(store=store, filters=filters, before=before)
                plain = selectors.event_page_queryset(store=store, alias="owner", filters=filters, before=before)
                expected = [e.event_id for e in plain[: selectors.PAGE_SIZE + 1]]
                assert [e.event_id for e in page.events] == expected[: selectors.PAGE_SIZE], (partner, filters)
                assert (page.next_before is not None) == (len(expected) > selectors.PAGE_SIZE)
                compared += 1
    assert compared == 40


def test_common_metadata_and_a_common_tenant_that_never_meet_are_read_through_the_terms_index(loaded_log):
    connection, _ = loaded_log
    store = EventStore(alias="owner")
    # The hot tenant has every tenth row, actor a1 every hundredth row plus one: they never meet.
    filters = selectors.EventFilters(tenant_id=COMMON["tenant_id"], metadata=COMMON["metadata"])
    assert selectors.event_page(store=store, filters=filters).events == []
    qs = selectors.terms_queryset(alias="owner", store=store, filters=filters, before=None)
    query, params = qs[: selectors.TERMS_CAP + 1].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(selectors.BITMAP_ONLY, ["off", "off"])
        cursor.execute("EXPLAIN (FORMAT JSON) " + query, params)
        scans = _scans(cursor.fetchone()[0][0]["Plan"])
        cursor.execute(selectors.BITMAP_ONLY, ["on", "on"])
    assert ("index", "events_event_terms") in scans, scans
    assert ("Seq Scan", "events_event") not in scans


def test_a_metadata_filter_never_matches_an_array_or_an_object_holding_the_value(loaded_log):
    connection, _ = loaded_log
    with connection.cursor() as cursor:
        for metadata in ('{"actor": ["zz-1"]}', '{"actor": {"zz-1": 1}}', '{"actor": "zz-1"}'):
            cursor.execute(
                "INSERT INTO events_event (event_uuid, aggregate_type, aggregate_id, version, event_type, "
                "event_version, event_data, event_metadata, occurred_at, tenant_id) "
                "VALUES (gen_random_uuid(), 'shape', %s, 1, 'shape.x', 1, '{}', %s, now(), %s)",
                [metadata, metadata, RARE_TENANT],
            )
    store = EventStore(alias="owner")
    filters = selectors.EventFilters(tenant_id=RARE_TENANT, metadata={"actor": "zz-1"})
    page = selectors.event_page(store=store, filters=filters)
    assert [e.event_metadata for e in page.events] == [{"actor": "zz-1"}]


def test_the_type_menus_list_every_distinct_type_of_the_log_in_order(loaded_log):
    connection, _ = loaded_log
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT aggregate_type FROM events_event ORDER BY 1")
        aggregate_types = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT DISTINCT event_type FROM events_event ORDER BY 1")
        event_types = [row[0] for row in cursor.fetchall()]
    store = EventStore(alias="owner")
    assert "rare.thing" in aggregate_types and "rare.happened" in event_types
    assert selectors.type_choices(store) == {"aggregate_types": aggregate_types, "event_types": event_types}
    assert selectors.type_choices(store, limit=2)["event_types"] == event_types[:2]


@pytest.mark.django_db(databases="__all__")
def test_a_tenants_type_menus_list_only_the_types_of_its_own_log(tenant_world):
    from tenants.logs import tenant_log_store

    tenant, neighbour = tenant_world["shared"]  # one pool: both tenants' events share its table
    tenant_log_store(neighbour).append("secret.kind", "x-1", "secret.happened", {}, expected_version=0)
    tenant_log_store(tenant).append("own.kind", "y-1", "own.happened", {}, expected_version=0)
    choices = selectors.type_choices(tenant_log_store(tenant))
    assert "own.kind" in choices["aggregate_types"] and "secret.kind" not in choices["aggregate_types"]
    assert "own.happened" in choices["event_types"] and "secret.happened" not in choices["event_types"]


# Values of every shape the terms function meets: metadata that is no object, empty, nested, holding
# JSON null, booleans, numbers in several spellings, strings that need escaping; missing columns.
TERMS_METADATA = [
    None,
    "{}",
    "[]",
    '"text"',
    "12",
    "null",
    '{"actor": "a1"}',
    '{"actor": "a1", "request": "r-9", "n": 12, "x": 1.50, "big": 1e3, "ok": true, "no": false, "none": null}',
    '{"nested": {"actor": "a1"}, "list": ["a1"], "actor": "a2"}',
    '{"quote\\"key": "va\\\\lue\\n", "ünï": "çødé ✓", "": ""}',
    '{"only": {"deep": [1, 2]}}',
]


@pytest.mark.parametrize("metadata", TERMS_METADATA)
@pytest.mark.parametrize("tenant_id, correlation_id", [(HOT_TENANT, RARE_CORRELATION), (None, None)])
def test_the_plpgsql_terms_function_returns_what_the_sql_one_indexed(metadata, tenant_id, correlation_id):
    """The terms index keeps the values the SQL body (0005) computed for older rows, and the viewer
    looks them up through the PL/pgSQL body (0006): both must give the same array for every input."""
    from importlib import import_module  # a migration module's name starts with a digit

    sql_body = import_module("events.migrations.0006_viewer_terms_plpgsql").SQL_BODY
    owner = connections["owner"]
    args = "%s::uuid, 'agg.type', 'agg-1', 'ev.type', %s::uuid, %s::jsonb"
    with owner.cursor() as cursor:
        cursor.execute(
            "SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.proname = %s",
            ["events_viewer_terms"],
        )
        assert cursor.fetchone()[0] == "plpgsql"
        cursor.execute(sql_body.replace("FUNCTION events_viewer_terms(", "FUNCTION pg_temp.terms_sql("))
        cursor.execute(
            f"SELECT events_viewer_terms({args}), pg_temp.terms_sql({args})",
            [tenant_id, correlation_id, metadata] * 2,
        )
        plpgsql_terms, sql_terms = cursor.fetchone()
    assert plpgsql_terms == sql_terms
    assert ("t:" + str(tenant_id) in plpgsql_terms) is (tenant_id is not None)
