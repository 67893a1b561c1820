"""The erasure saga's verification: look for a person's email and names in plain text, everywhere.

Every table of the tenant's placement (inside its context: RLS shows exactly this tenant's rows,
snapshots, projections and sessions included) and every table of the control plane's `public`
schema; every text, character and JSON column, cast to text and matched with ILIKE. Binary columns
are not read: they hold ciphertext or hashes. Table and column names come from the catalog and are
quoted with psycopg.sql.Identifier; the needles are parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import ProgrammingError, connections, transaction
from psycopg import sql

from tenants.context import tenant_context
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
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _scan(alias: str, schema: str, needles: list[str], where: str, report: ScanReport) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT c.table_name, array_agg(c.column_name::text ORDER BY c.ordinal_position)"
            " FROM information_schema.columns c JOIN information_schema.tables t"
            " ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
            " WHERE c.table_schema = %s AND t.table_type = 'BASE TABLE' AND c.data_type = ANY(%s)"
            " GROUP BY c.table_name ORDER BY c.table_name",
            [schema, list(TEXT_TYPES)],
        )
        tables = cursor.fetchall()
    patterns = [_like(n) for n in needles]
    for table, columns in tables:
        report.tables += 1
        report.columns += len(columns)
        condition = sql.SQL(" OR ").join(
            sql.SQL("{}::text ILIKE ANY(%s)").format(sql.Identifier(column)) for column in columns
        )
        query = sql.SQL("SELECT 1 FROM {}.{} WHERE {} LIMIT 1").format(
            sql.Identifier(schema), sql.Identifier(table), condition
        )
        try:
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute(query, [patterns] * len(columns))
                if cursor.fetchone():
                    report.hits.append(f"{where}:{table}")
        except ProgrammingError as exc:
            # A table this role may not read is reported (and fails the verification), never a pass;
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
        with tenant_context(tenant) as alias:
            _scan(alias, placement.schema_name, needles, "placement", report)
    _scan("default", "public", needles, "control", report)
    return report
