"""`events_viewer_terms` in PL/pgSQL, with the very same terms (issue 15, event append cost).

The SQL version (0005) holds a sub-SELECT over `jsonb_each`, so PostgreSQL cannot inline it: every
insert into the control log evaluated it through the SQL-function executor, which parses, analyses and
plans its body anew for each row, and planned the index expression around it for each statement. A
profile of the server (perf, 1 writer, autocommit appends) put that at 40 % of the server's CPU per
append — more than the hash-chain trigger. PL/pgSQL keeps the sub-SELECT's plan for the session and
skips it altogether for empty metadata (most control-log events).

The terms index stays valid: an expression index holds what the function returned, and this body
returns the same array for every input (events/tests/test_viewer_indexes.py compares the two bodies
over generated rows). Replacing a function is instant; no index is rebuilt.
"""

from importlib import import_module

from django.db import migrations

PLPGSQL = """
CREATE OR REPLACE FUNCTION events_viewer_terms(
    tenant_id uuid, aggregate_type text, aggregate_id text, event_type text, correlation_id uuid, metadata jsonb
) RETURNS text[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF jsonb_typeof(metadata) = 'object' AND metadata <> '{}'::jsonb THEN
        RETURN array_remove(ARRAY['t:' || tenant_id::text, 'a:' || aggregate_type, 'i:' || aggregate_id,
                                  'e:' || event_type, 'c:' || correlation_id::text], NULL)
            || coalesce((SELECT array_agg('m:' || to_jsonb(m.key)::text || '=' || m.value::text)
                           FROM jsonb_each(metadata) m
                          WHERE jsonb_typeof(m.value) NOT IN ('object', 'array')), '{}');
    END IF;
    RETURN array_remove(ARRAY['t:' || tenant_id::text, 'a:' || aggregate_type, 'i:' || aggregate_id,
                              'e:' || event_type, 'c:' || correlation_id::text], NULL);
END
$$
"""

# 0005's body, for reversing this migration (and for the test that compares the two).
SQL_BODY = import_module("events.migrations.0005_viewer_metadata_terms").FUNCTION


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0005_viewer_metadata_terms"),
    ]

    operations = [
        migrations.RunSQL(PLPGSQL, SQL_BODY),
    ]
