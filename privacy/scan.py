"""The erasure saga's verification: look for a person's email and names in plain text, everywhere.

Every table of the tenant's placement (inside the tenant's context: FORCE'd RLS shows exactly this
tenant's rows, snapshots, projections and sessions included) and every table of the control
plane's `public` schema — listed from the catalog, so no table is hidden by a missing grant; a
table the application role may not read is read by the owner role. Every text, character and
JSON column, cast to text, joined per row, lowered and matched with LIKE. Binary columns are not
read: they hold ciphertext or hashes. Table and column names come from the catalog and are
quoted with psycopg.sql.Identifier; the needles are parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import ProgrammingError, connections, transaction
from psycopg import sql

from tenants.context import applied, tenant_context
from tenants.models import Tenant

TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "citext")
INSUFFICIENT_PRIVILEGE = "42501"
MIN_NAME_LENGTH = 4  # shorter names match too much unrelated text to be evidence either way


@dataclass
class ScanReport:
    tables: int = 0
    columns: int = 0
    hits: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"tables": self.tables, "columns": self.columns, "hits": self.hits, "unreadable": self.unreadable}


def _like(needle: str) -> str:
    needle = needle.lower()
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _tables(alias: str, schema: str) -> list[tuple[str, list[str], bool]]:
    """(table, its text columns, readable by this connection's role) for every table of `schema`.

    The catalog, not information_schema: the latter hides tables the role has no privilege on."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname::text, array_agg(a.attname::text ORDER BY a.attnum),"
            " has_table_privilege(c.oid, 'SELECT')"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'm')"
            " AND format_type(a.atttypid, NULL) = ANY(%s)"
            " GROUP BY c.oid, c.relname ORDER BY c.relname",
            [schema, list(TEXT_TYPES)],
        )
        return [(t, list(cols), bool(ok)) for t, cols, ok in cursor.fetchall()]


def _scan_table(alias: str, schema: str, table: str, columns: list[str], patterns: list[str]) -> bool:
    # One lowered string per row and one LIKE ANY over it: about 3x faster than an ILIKE per column
    # on a million events (measured in bench/bench_privacy.py's placement). A needle spanning two
    # columns would count as a hit too: the scan errs towards failing, never towards passing.
    text = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns)
    query = sql.SQL("SELECT 1 FROM {}.{} WHERE lower(concat_ws(' ', {})) LIKE ANY(%s) LIMIT 1").format(
        sql.Identifier(schema), sql.Identifier(table), text
    )
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute(query, [patterns])
        return cursor.fetchone() is not None


def _scan(
    alias: str, owner: Callable[[], AbstractContextManager[str]], schema: str, needles: list[str], where: str,
    report: ScanReport,
) -> None:  # fmt: skip
    """Scan as the application's role (it sees the rows the application wrote, in this transaction
    too); tables that role may not read were never written by it, so the owner role reads those."""
    patterns = [_like(n) for n in needles]
    tables = _tables(alias, schema)
    hidden = []
    for table, columns, readable in tables:
        report.tables += 1
        report.columns += len(columns)
        if not readable:
            hidden.append((table, columns))
        elif _scan_table(alias, schema, table, columns, patterns):
            report.hits.append(f"{where}:{table}")
    if hidden:
        with owner() as owner_alias:
            for table, columns in hidden:
                try:
                    if _scan_table(owner_alias, schema, table, columns, patterns):
                        report.hits.append(f"{where}:{table}")
                except ProgrammingError as exc:
                    # Unreadable even by the owner: reported (and the verification fails), never a pass;
                    # anything else (a lost connection, a crash) propagates, so the step is retried.
                    if getattr(exc.__cause__, "sqlstate", "") != INSUFFICIENT_PRIVILEGE:
                        raise
                    report.unreadable.append(f"{where}:{table}")


def plaintext_scan(tenant: Tenant, needles: list[str]) -> ScanReport:
    """Where the needles appear in plain text: `placement:<table>` or `control:<table>` entries."""
    needles = [n for n in dict.fromkeys(n.strip() for n in needles if n) if len(n) >= MIN_NAME_LENGTH]
    report = ScanReport()
    if not needles:
        return report
    placement = tenant.placement
    if placement is not None:
        # In the tenant's context: FORCE'd RLS shows only this tenant's rows of a shared pool, for the
        # owner role too — another tenant's data is not this person's.
        def placement_owner() -> AbstractContextManager[str]:
            return applied(placement.owner_alias, tenant_id=tenant.pk, schema_name=placement.schema_name)

        with tenant_context(tenant) as alias:
            _scan(alias, placement_owner, placement.schema_name, needles, "placement", report)
    _scan("default", lambda: _owner_control(), "public", needles, "control", report)
    return report


@contextmanager
def _owner_control() -> Iterator[str]:
    with transaction.atomic(using="owner"):
        yield "owner"
