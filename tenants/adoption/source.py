"""Reading a django-tenants deployment: its tenant and domain tables, and a plan per tenant.

Nothing here writes anywhere. `source_connect` opens a session that is read-only by default;
`discover_tables` finds the tenant and domain tables by django-tenants' conventions (or the names
given); `plan_import` reads every tenant row, its domains and its schema's tables in one snapshot
and says, per tenant, import (with the tables, columns and row counts), skip or refuse (with the
sentence why). tenants/adoption/copy.py carries a plan out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from psycopg import sql

from core.errors import InvalidInput
from tenants import placements
from tenants.models import Domain, Placement, Tenant, TenantImport
from tenants.moves.copy import Table, tenant_tables
from tenants.selectors import primary_domain_for
from tenants.validation import schema_name_for_slug, validate_slug

MARK = "django-tenants import of "  # + "<source database> <schema>", the comment on the new schema
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
DOMAIN_COLUMNS = ("domain", "is_primary", "tenant_id")


class AdoptionError(InvalidInput):
    """The source cannot be imported as it is (or one tenant of it); one sentence."""


# --- what the source holds --------------------------------------------------------------


@dataclass(frozen=True)
class SourceTables:
    tenant_table: tuple[str, str]  # (schema, table)
    tenant_key: str  # the column the domain table's tenant_id references
    domain_table: tuple[str, str]
    has_name: bool

    @property
    def labels(self) -> tuple[str, str]:
        return ".".join(self.tenant_table), ".".join(self.domain_table)


@dataclass
class TablePlan:
    name: str
    columns: tuple[str, ...]  # copied from the source (in the staging table's order)
    rows: int
    table: Table


@dataclass
class TenantPlan:
    """What the import does (or would do) with one django-tenants tenant."""

    source_key: str
    schema: str
    name: str
    domains: list[str]
    slug: str = ""
    target_schema: str = ""
    action: str = "import"  # import | skip | refuse
    reason: str = ""
    tables: list[TablePlan] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    source_migrations: list[str] = field(default_factory=list)
    tenant_id: str = ""
    copied: dict[str, int] = field(default_factory=dict)  # rows per table, once imported

    def describe(self) -> str:
        if self.action != "import":
            return f"{self.schema}: {self.action} — {self.reason}"
        rows = ", ".join(f"{t.name} {t.rows}" for t in self.tables) or "no data-plane tables"
        extra = f"; left in the source: {', '.join(self.left_out)}" if self.left_out else ""
        hosts = ", ".join([primary_domain_for(self.slug), *self.domains])
        return f"{self.schema} → tenant {self.slug} in schema {self.target_schema} ({rows}; hosts {hosts}){extra}"


@dataclass
class ImportReport:
    source: str
    same_database: bool
    tables: SourceTables
    plans: list[TenantPlan]
    imported: list[str] = field(default_factory=list)  # tenant ids
    failed: list[TenantPlan] = field(default_factory=list)

    @property
    def refused(self) -> list[TenantPlan]:
        """Tenants not imported for a reason the operator must act on (failed ones included)."""
        return [p for p in self.plans if p.action == "refuse"]


def qualified(schema: str, table: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def source_connect(url: str) -> psycopg.Connection:
    """A read-only session on the django-tenants database; one sentence if it cannot be had."""
    if not isinstance(url, str) or "\x00" in url or not re.match(r"^postgres(ql)?://", url):
        raise AdoptionError("The --database value must be a postgres:// URL of the django-tenants database.")
    try:
        conn = psycopg.connect(url, connect_timeout=10)
    except (psycopg.Error, ValueError) as exc:
        # libpq's message names the server, port, user and database, never the password.
        detail = str(exc).strip().splitlines()[-1].strip() if str(exc).strip() else type(exc).__name__
        raise AdoptionError(f"Cannot connect to the django-tenants database: {detail}") from None
    conn.execute("SET default_transaction_read_only = on")
    conn.execute("SET TimeZone TO 'UTC'")
    conn.execute("SET DateStyle TO 'ISO, YMD'")
    conn.execute("SET extra_float_digits TO 3")
    conn.commit()
    return conn


def source_label(conn: psycopg.Connection) -> str:
    return f"{conn.info.host}:{conn.info.port}/{conn.info.dbname}"


def _identity(conn: Any) -> tuple[str, str, str]:
    row = conn.execute(
        "SELECT current_database(), pg_postmaster_start_time()::text, "
        "(SELECT oid::text FROM pg_database WHERE datname = current_database())"
    ).fetchone()
    return (str(row[0]), str(row[1]), str(row[2])) if row else ("", "", "")


def is_control_plane_database(conn: psycopg.Connection) -> bool:
    """Same server (same postmaster start time) and same database (name and oid) as ours."""
    with placements.owner_connect(autocommit=True) as own:
        ours = _identity(own)
    theirs = _identity(conn)
    conn.rollback()
    return ours == theirs


def _columns(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s "
        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        [schema, table],
    ).fetchall()
    return [r[0] for r in rows]


def _resolve(conn: psycopg.Connection, name: str, what: str) -> tuple[str, str]:
    """`schema.table` or a table name found in exactly one schema."""
    if "\x00" in name or len(name) > 130:
        raise AdoptionError(f"The {what} table name is not a table name.")
    schema, _, table = name.rpartition(".")
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND c.relname = %s AND (%s = '' OR n.nspname = %s) "
        "AND n.nspname <> ALL(%s) ORDER BY 1",
        [table, schema, schema, list(SYSTEM_SCHEMAS)],
    ).fetchall()
    if len(rows) != 1:
        where = "is not" if not rows else "is in several schemas"
        raise AdoptionError(f"The {what} table “{name}” {where} in the django-tenants database.")
    return rows[0][0], rows[0][1]


def _references(conn: psycopg.Connection, domain: tuple[str, str]) -> tuple[str, str, str] | None:
    """The (schema, table, column) the domain table's tenant_id references, if it is a foreign key."""
    row = conn.execute(
        "SELECT rn.nspname, r.relname, ra.attname FROM pg_constraint con "
        "JOIN pg_class t ON t.oid = con.conrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace "
        "JOIN pg_attribute ta ON ta.attrelid = t.oid AND ta.attnum = con.conkey[1] "
        "JOIN pg_class r ON r.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace "
        "JOIN pg_attribute ra ON ra.attrelid = r.oid AND ra.attnum = con.confkey[1] "
        "WHERE con.contype = 'f' AND tn.nspname = %s AND t.relname = %s AND ta.attname = 'tenant_id' "
        "AND cardinality(con.conkey) = 1",
        list(domain),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


def discover_tables(conn: psycopg.Connection, *, tenant_table: str = "", domain_table: str = "") -> SourceTables:
    """The tenant and domain tables, by django-tenants' conventions unless named: a domain table has
    `domain`, `is_primary` and a `tenant_id` foreign key to the tenant table, which has `schema_name`."""
    try:
        if domain_table:
            domains = [_resolve(conn, domain_table, "domain")]
        else:
            domains = [
                (r[0], r[1])
                for r in conn.execute(
                    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind IN ('r', 'p') AND n.nspname <> ALL(%s) AND (SELECT count(*) FROM pg_attribute a "
                    "WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attname = ANY(%s)) = 3 "
                    "ORDER BY 1, 2",
                    [list(SYSTEM_SCHEMAS), list(DOMAIN_COLUMNS)],
                ).fetchall()
            ]
        tenant = _resolve(conn, tenant_table, "tenant") if tenant_table else None
        if tenant is not None and "schema_name" not in _columns(conn, *tenant):
            raise AdoptionError(f"The tenant table “{tenant_table}” has no schema_name column.")
        found: list[SourceTables] = []
        for domain in domains:
            if not set(DOMAIN_COLUMNS) <= set(_columns(conn, *domain)):
                raise AdoptionError(
                    f"The domain table “{domain_table}” lacks a domain, is_primary or tenant_id column."
                )
            ref = _references(conn, domain)
            if ref is None or "schema_name" not in _columns(conn, ref[0], ref[1]):
                continue
            if tenant is not None and (ref[0], ref[1]) != tenant:
                continue
            has_name = "name" in _columns(conn, ref[0], ref[1])
            found.append(SourceTables((ref[0], ref[1]), ref[2], domain, has_name))
        if not found and tenant is not None and domain_table and "id" in _columns(conn, *tenant):
            # Both named but no foreign key between them (dropped, or never declared): the usual `id`.
            has_name = "name" in _columns(conn, *tenant)
            found.append(SourceTables(tenant, "id", domains[0], has_name))
    finally:
        conn.rollback()
    if not found:
        raise AdoptionError(
            "No django-tenants tables were found: no table with domain, is_primary and tenant_id refers to a table "
            "with schema_name (name them with --tenant-table and --domain-table)."
        )
    if len(found) > 1:
        names = "; ".join(" and ".join(t.labels) for t in found)
        raise AdoptionError(f"Several django-tenants table pairs were found ({names}); name one with --tenant-table.")
    return found[0]


# --- planning ---------------------------------------------------------------------------


def slug_for_schema(schema: str) -> str:
    """django-tenants schema names allow underscores, capitals and leading digits; slugs do not."""
    slug = re.sub(r"[^a-z0-9]+", "-", schema.lower()).strip("-")
    if slug[:1].isdigit():
        slug = f"t-{slug}"
    return slug[:40].rstrip("-")


def _our_columns() -> dict[str, dict[str, bool]]:
    """Per TENANT_APPS table in the template schema: column → whether an INSERT must give it."""
    placements.template_schema_ensure()
    with placements.owner_connect(autocommit=True) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, is_nullable = 'NO' AND column_default IS NULL "
            "FROM information_schema.columns WHERE table_schema = %s ORDER BY ordinal_position",
            [placements.template_schema()],
        ).fetchall()
    found: dict[str, dict[str, bool]] = {}
    for table, column, required in rows:
        found.setdefault(table, {})[column] = bool(required)
    return found


def _plan_tables(conn: psycopg.Connection, plan: TenantPlan, ours: dict[str, dict[str, bool]]) -> None:
    theirs: dict[str, list[str]] = {}
    for table, column in conn.execute(
        "SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid WHERE n.nspname = %s AND c.relkind IN ('r', 'p') "
        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum",
        [plan.schema],
    ).fetchall():
        theirs.setdefault(table, []).append(column)
    known = {t.name: t for t in tenant_tables()}
    plan.left_out = sorted(set(theirs) - set(known) - {"django_migrations"})
    # Row-level security on a source table could hide rows from the role in the URL: the copy would
    # then be short while its counts (read by the same role) agree. Refuse unless the role bypasses it.
    hidden = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
        "AND c.relname = ANY(%s) AND c.relrowsecurity AND (c.relforcerowsecurity OR pg_get_userbyid(c.relowner) "
        "<> current_user) AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) "
        "ORDER BY 1",
        [plan.schema, list(known)],
    ).fetchall()
    if hidden:
        return refuse(
            plan,
            f"its table {hidden[0][0]} has row-level security that may hide rows from the role in the URL "
            "(use a role that bypasses it)",
        )
    for name, table in known.items():
        if name not in theirs:
            continue
        source = theirs[name]
        unknown = [c for c in source if c not in ours.get(name, {})]
        if unknown:
            return refuse(plan, f"its table {name} has columns this control plane does not have: {', '.join(unknown)}")
        filled = {"tenant_id", *table.derived}
        missing = [c for c, required in ours[name].items() if required and c not in source and c not in filled]
        if missing:
            return refuse(plan, f"its table {name} lacks the required columns {', '.join(missing)}")
        columns = tuple(c for c in table.copy_columns if c in source and c != "tenant_id")
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(qualified(plan.schema, name))).fetchone()
        plan.tables.append(TablePlan(name, columns, int(row[0]) if row else 0, table))
    if "django_migrations" in theirs:
        labels = placements.tenant_app_labels()
        plan.source_migrations = [
            f"{app}.{name}"
            for app, name in conn.execute(
                sql.SQL("SELECT app, name FROM {} WHERE app = ANY(%s) ORDER BY app, name").format(
                    qualified(plan.schema, "django_migrations")
                ),
                [labels],
            ).fetchall()
        ]


def refuse(plan: TenantPlan, reason: str) -> None:
    plan.action, plan.reason = "refuse", reason


def skip(plan: TenantPlan, reason: str) -> None:
    plan.action, plan.reason = "skip", reason


def _plan_one(conn: psycopg.Connection, plan: TenantPlan, *, source: str, same_database: bool, ours: Any) -> None:
    public = getattr(settings, "PUBLIC_SCHEMA_NAME", "public")
    if plan.schema == public:
        return skip(plan, "the django-tenants public schema holds no tenant's data")
    done = TenantImport.objects.filter(source_database=source, source_schema=plan.schema).select_related("tenant")
    if (previous := done.first()) is not None:
        return skip(plan, f"already imported as tenant {previous.tenant.slug}")
    if same_database and Placement.objects.filter(database_alias="default", schema_name=plan.schema).exists():
        return skip(plan, "the schema is already a placement of this control plane")
    exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [plan.schema]).fetchone()
    if exists is None:
        return skip(plan, "its schema does not exist in the django-tenants database")
    plan.slug = slug_for_schema(plan.schema)
    try:
        validate_slug(plan.slug)
        plan.target_schema = schema_name_for_slug(plan.slug)
    except ValidationError:
        return refuse(plan, f"its schema name gives no usable tenant slug (“{plan.slug}”)")
    if TenantImport.objects.filter(tenant__slug=plan.slug, source_schema=plan.schema).exists():
        # The same deployment reached under another host name (localhost vs 127.0.0.1, a replica).
        return skip(plan, f"already imported as tenant {plan.slug}")
    if Tenant.objects.filter(slug=plan.slug).exists():
        return refuse(plan, f"a tenant with the slug {plan.slug} already exists here")
    if Placement.objects.filter(database_alias="default", schema_name=plan.target_schema).exists():
        return refuse(plan, f"the schema {plan.target_schema} is already a placement here")
    hosts = [primary_domain_for(plan.slug), *plan.domains]
    taken = Domain.objects.filter(domain__in=hosts).values_list("domain", flat=True).first()
    if taken is not None:
        return refuse(plan, f"the domain {taken} already belongs to another tenant here")
    _plan_tables(conn, plan, ours)


def plan_import(
    conn: psycopg.Connection, tables: SourceTables, *, source: str, same_database: bool, only: str | None = None
) -> list[TenantPlan]:
    """One plan per django-tenants tenant row (or only the one of schema `only`), read in one
    snapshot; nothing is written anywhere."""
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        name = sql.Identifier("name") if tables.has_name else sql.Identifier("schema_name")
        rows = conn.execute(
            sql.SQL(
                "SELECT {key}::text, schema_name, {name} FROM {t} WHERE %s::text IS NULL OR schema_name = %s "
                "ORDER BY schema_name"
            ).format(key=sql.Identifier(tables.tenant_key), name=name, t=qualified(*tables.tenant_table)),
            [only, only],
        ).fetchall()
        domains: dict[str, list[str]] = {}
        for domain, tenant_key in conn.execute(
            sql.SQL("SELECT lower(domain), tenant_id::text FROM {} ORDER BY is_primary DESC, domain").format(
                qualified(*tables.domain_table)
            )
        ).fetchall():
            domains.setdefault(tenant_key, []).append(domain)
        ours = _our_columns()
        plans = []
        for key, schema, display in rows:
            plan = TenantPlan(source_key=key, schema=schema, name=(display or schema)[:200], domains=[])
            plan.domains = [d for d in domains.get(key, []) if d != primary_domain_for(slug_for_schema(schema))]
            _plan_one(conn, plan, source=source, same_database=same_database, ours=ours)
            plans.append(plan)
        slugs = [p.slug for p in plans if p.action == "import"]
        for plan in plans:
            if plan.action == "import" and slugs.count(plan.slug) > 1:
                refuse(plan, f"another schema of the deployment gives the same slug {plan.slug}")
        return plans
    finally:
        conn.rollback()


# --- importing ----------------------------------------------------------------------------
