"""The control log's viewer: a metadata filter paired with another filter is index-backed (issue 15).

`events_viewer_terms(...)` turns a row's filterable values into terms ('t:<tenant>', 'a:<aggregate
type>', 'i:<aggregate id>', 'e:<event type>', 'c:<correlation>', 'm:"<key>"=<json value>' for each
scalar metadata value), and one GIN index over them answers "metadata k=v AND tenant X" (or event type,
aggregate, correlation) by intersecting two posting lists inside the index — even when both values are
common and never occur together, where walking either value's btree read millions of rows (2–3 s at 10M
events; docs/events.md). Built CONCURRENTLY like 0003/0004 (no write lock on the log), hence atomic = False.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION events_viewer_terms(
    tenant_id uuid, aggregate_type text, aggregate_id text, event_type text, correlation_id uuid, metadata jsonb
) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_remove(ARRAY['t:' || tenant_id::text, 'a:' || aggregate_type, 'i:' || aggregate_id,
                              'e:' || event_type, 'c:' || correlation_id::text], NULL)
        || coalesce((SELECT array_agg('m:' || to_jsonb(m.key)::text || '=' || m.value::text)
                       FROM jsonb_each(CASE WHEN jsonb_typeof(metadata) = 'object' THEN metadata END) m
                      WHERE jsonb_typeof(m.value) NOT IN ('object', 'array')), '{}')
$$
"""

INDEX = """
CREATE INDEX CONCURRENTLY events_event_terms ON events_event USING gin (
    events_viewer_terms(tenant_id, aggregate_type, aggregate_id, event_type, correlation_id, event_metadata)
)
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("events", "0004_viewer_pair_indexes"),
    ]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION IF EXISTS events_viewer_terms(uuid, text, text, text, uuid, jsonb)"),
        migrations.RunSQL(INDEX, "DROP INDEX CONCURRENTLY IF EXISTS events_event_terms"),
    ]
