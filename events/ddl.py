"""DDL shared by every event table (the control-plane log and each tenant log).

One event table per log, same shape everywhere. What the database enforces:

- `<table>_before_insert` (row trigger): stamps `tx_id = pg_current_xact_id()`
  (the gap-safe feed reads only below the oldest running transaction),
  fills `occurred_at` with `clock_timestamp()` when the writer gave none,
  refuses a version that does not follow an existing one (no gaps), keeps
  `occurred_at` non-decreasing inside a stream (so "state at T" is always a
  prefix of the stream), and computes the hash chain
  (`prev_hash` = the previous version's `hash`, `hash` = sha256 over the
  previous hash and every stored field). Clients cannot choose these values.
- `<table>_immutable` (row trigger, UPDATE/DELETE) and
  `<table>_no_truncate` (statement trigger, TRUNCATE) raise for everyone,
  the owner included. Only the owner can disable them (ALTER TABLE), which the
  test-suite flush does inside its own transaction (saas_admin/db_backend).
- Grants: the app role keeps SELECT and INSERT only.

Everything is written without schema qualification so the same migration
works in `public`, in every pool/tenant schema and in dedicated databases;
the trigger takes a dynamic path when the table is written from a session
whose search_path points elsewhere (copies between placements).
"""

from __future__ import annotations

from django.conf import settings
from psycopg import sql

# SQLSTATEs the store maps to Python exceptions (see events/store.py).
SQLSTATE_VERSION_GAP = "EV001"
SQLSTATE_IMMUTABLE = "EV002"
SQLSTATE_TIME_ORDER = "EV003"

HASH_FUNCTION = """
CREATE OR REPLACE FUNCTION events_hash(
    prev bytea, aggregate_type text, aggregate_id text, version integer, event_type text,
    event_version integer, event_data jsonb, event_metadata jsonb, occurred_at timestamptz,
    causation_id uuid, correlation_id uuid, tenant_id uuid, event_uuid uuid
) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(concat_ws(chr(31),
        encode(coalesce(prev, ''::bytea), 'hex'), aggregate_type, aggregate_id, version::text,
        event_type, event_version::text, event_data::text, event_metadata::text,
        (extract(epoch FROM occurred_at) * 1000000)::bigint::text,
        coalesce(causation_id::text, ''), coalesce(correlation_id::text, ''),
        coalesce(tenant_id::text, ''), event_uuid::text), 'UTF8'))
$$;
"""

IMMUTABLE_FUNCTION = """
CREATE OR REPLACE FUNCTION events_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Tenant deletion only: the table's owner, in a transaction that names this tenant, may delete its rows.
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW'
       AND current_setting('events.purge_tenant_id', true) = OLD.tenant_id::text
       AND current_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'events are immutable: % on %.% is not allowed', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'EV002', HINT = 'Append a compensating event instead.';
END
$$;
"""

INSERT_FUNCTION = """
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev_hash_v bytea;
    prev_at timestamptz;
    server_time boolean := NEW.occurred_at IS NULL;
BEGIN
    NEW.tx_id := pg_current_xact_id();{trusted}
    IF server_time THEN
        NEW.occurred_at := clock_timestamp();
    END IF;
    IF NEW.version IS NULL OR NEW.version < 1 THEN
        RAISE EXCEPTION 'event version must be 1 or more' USING ERRCODE = 'EV001';
    END IF;
    NEW.prev_hash := NULL;
    IF NEW.version > 1 THEN
        IF TG_TABLE_SCHEMA = current_schema() THEN
            SELECT e.hash, e.occurred_at INTO prev_hash_v, prev_at FROM {table} e
             WHERE e.aggregate_type = NEW.aggregate_type AND e.aggregate_id = NEW.aggregate_id
               AND e.version = NEW.version - 1 {tenant_filter};
        ELSE
            EXECUTE format('SELECT e.hash, e.occurred_at FROM %I.%I e WHERE e.aggregate_type = $1 '
                           'AND e.aggregate_id = $2 AND e.version = $3 {tenant_filter_dynamic}',
                           TG_TABLE_SCHEMA, TG_TABLE_NAME)
               INTO prev_hash_v, prev_at USING NEW.aggregate_type, NEW.aggregate_id, NEW.version - 1, NEW.tenant_id;
        END IF;
        IF prev_hash_v IS NULL THEN
            RAISE EXCEPTION 'version % of %/% does not follow an existing version',
                NEW.version, NEW.aggregate_type, NEW.aggregate_id USING ERRCODE = 'EV001';
        END IF;
        IF NEW.occurred_at < prev_at THEN
            IF server_time THEN
                NEW.occurred_at := prev_at;  -- the clock stepped back; keep the stream ordered
            ELSE
                RAISE EXCEPTION 'occurred_at % is before the previous event of %/% (%)',
                    NEW.occurred_at, NEW.aggregate_type, NEW.aggregate_id, prev_at USING ERRCODE = 'EV003';
            END IF;
        END IF;
        NEW.prev_hash := prev_hash_v;
    END IF;
    NEW.hash := events_hash(NEW.prev_hash, NEW.aggregate_type, NEW.aggregate_id, NEW.version, NEW.event_type,
                            NEW.event_version, NEW.event_data, NEW.event_metadata, NEW.occurred_at,
                            NEW.causation_id, NEW.correlation_id, NEW.tenant_id, NEW.event_uuid);
    RETURN NEW;
END
$$;
"""


# A tenant log's trigger takes the chain as given in one case only: a move copying a tenant's events
# into a pool (tenants/moves/copy.py), in a transaction that says so, by a role that may put triggers
# on the table (its owner; the app roles have SELECT and INSERT only). Such a role could override the
# chain with a trigger of its own anyway, so this grants nothing new; the privilege check is a cache
# lookup (reading the table's owner from pg_class was a query per row, 18 µs). Recomputing the chain
# row by row was about half of copying the events; the move verifies every copied event's chain in
# one query instead (copy.chain_breaks) before the tenant is switched. Any other role setting the
# variable changes nothing: its events are chained here as always.
TRUSTED_CHAIN_SETTING = "events.copy_trusted_chain"
TRUSTED_CHAIN = f"""
    IF NEW.hash IS NOT NULL AND current_setting('{TRUSTED_CHAIN_SETTING}', true) = 'on'
       AND has_table_privilege(TG_RELID, 'TRIGGER') THEN
        RETURN NEW;  -- a move's copy, verified after it (tenants/moves/copy.py)
    END IF;"""


def insert_function_statement(table: str, *, tenant_scoped: bool, trusted_chain: bool = True) -> sql.Composable:
    """CREATE OR REPLACE the table's insert trigger function (the hash chain); a tenant log's takes a
    move's copied chain as given (TRUSTED_CHAIN) unless `trusted_chain` is False (the function before
    tenantlog 0003)."""
    function = INSERT_FUNCTION.format(
        function="{function}",
        table="{table}",
        trusted=TRUSTED_CHAIN if tenant_scoped and trusted_chain else "",
        tenant_filter="AND e.tenant_id = NEW.tenant_id" if tenant_scoped else "",
        tenant_filter_dynamic="AND e.tenant_id = $4" if tenant_scoped else "",
    )
    return sql.SQL(function).format(function=sql.Identifier(f"{table}_before_insert"), table=sql.Identifier(table))


def install_statements(table: str, *, tenant_scoped: bool, with_indexes: bool = True) -> list[sql.Composable]:
    """Functions, triggers and indexes Django's schema editor cannot express."""
    t = sql.Identifier(table)
    function = sql.Identifier(f"{table}_before_insert")
    statements = [
        sql.SQL(HASH_FUNCTION),
        sql.SQL(IMMUTABLE_FUNCTION),
        insert_function_statement(table, tenant_scoped=tenant_scoped),
        sql.SQL("CREATE TRIGGER {} BEFORE INSERT ON {} FOR EACH ROW EXECUTE FUNCTION {}()").format(
            sql.Identifier(f"{table}_before_insert"), t, function
        ),
        sql.SQL(
            "CREATE TRIGGER {} BEFORE UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION events_forbid_change()"
        ).format(sql.Identifier(f"{table}_immutable"), t),
        sql.SQL(
            "CREATE TRIGGER {} BEFORE TRUNCATE ON {} FOR EACH STATEMENT EXECUTE FUNCTION events_forbid_change()"
        ).format(sql.Identifier(f"{table}_no_truncate"), t),
    ]
    if not with_indexes:  # a schema cloned with LIKE ... INCLUDING ALL already has them
        return statements
    return statements + [
        # Metadata search in the viewer (request ids, actors, ...): GIN with jsonb_path_ops.
        sql.SQL("CREATE INDEX {} ON {} USING gin (event_metadata jsonb_path_ops)").format(
            sql.Identifier(f"{table}_meta_gin"), t
        ),
        # The gap-safe feed: (tx_id, event_id) order, read below pg_snapshot_xmin().
        sql.SQL("CREATE INDEX {} ON {} (tx_id, event_id)").format(sql.Identifier(f"{table}_feed"), t),
    ]


def drop_statements(table: str) -> list[sql.Composable]:
    t = sql.Identifier(table)
    statements: list[sql.Composable] = [
        sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(f"{table}_{name}"), t)
        for name in ("before_insert", "immutable", "no_truncate")
    ]
    statements.append(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(f"{table}_before_insert")))
    return statements


def grant_statements(table: str) -> list[sql.Composable]:
    """The app role may read and append, nothing else."""
    app = sql.Identifier(settings.DB_APP_ROLE)
    t = sql.Identifier(table)
    return [
        sql.SQL("REVOKE ALL ON {} FROM {}").format(t, app),
        sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(t, app),
    ]


def install(schema_editor, table: str, *, tenant_scoped: bool) -> None:
    with schema_editor.connection.cursor() as cursor:
        for statement in install_statements(table, tenant_scoped=tenant_scoped) + grant_statements(table):
            cursor.execute(statement)


def uninstall(schema_editor, table: str) -> None:
    with schema_editor.connection.cursor() as cursor:
        for statement in drop_statements(table):
            cursor.execute(statement)


# Event tables of TENANT_APPS, installed again in schemas cloned from the template schema
# (CREATE TABLE ... LIKE copies columns and indexes, not triggers, functions or grants).
TENANT_EVENT_TABLES = ("tenantlog_event",)


def after_schema_clone(cursor) -> None:
    """Install triggers, functions and grants in a freshly cloned schema; `cursor` has search_path = that schema."""
    for table in TENANT_EVENT_TABLES:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        if cursor.fetchone()[0]:
            for statement in install_statements(table, tenant_scoped=True, with_indexes=False) + grant_statements(
                table
            ):
                cursor.execute(statement)
