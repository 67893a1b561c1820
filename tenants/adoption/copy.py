"""Importing one planned django-tenants tenant: all of it, or (on any failure) nothing of it.

The new schema is our template cloned (marked with a comment naming the import), the source's rows
are copied into it in one target transaction, then the control-plane rows are written in one
transaction; a failure drops the schema. A run killed between the two commits leaves a marked
schema and no record: the next run drops it and imports the tenant again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from psycopg import sql

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, actor_label
from tenants import placements
from tenants.adoption.source import MARK, AdoptionError, TenantPlan, qualified
from tenants.lifecycle import registered_data, tenant_event
from tenants.migration_state import placement_state_refresh
from tenants.models import Domain, Placement, Tenant, TenantImport
from tenants.moves.copy import connect
from tenants.selectors import host_cache_clear, primary_domain_for

Progress = Callable[[int, int], Any]  # (rows copied, rows to copy)
_LOCK_KEY = 0x7E4A60  # with hashtext(mark): one import of a given source schema at a time


def _mark(source: str, schema: str) -> str:
    return f"{MARK}{source} {schema}"


def _leftover_dropped(plan: TenantPlan, source: str) -> None:
    """A schema of an interrupted run of this very import (marked, no record) goes; anything else refuses."""
    with placements.owner_connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s", [plan.target_schema]
        ).fetchone()
    if row is None:
        return
    if row[0] != _mark(source, plan.schema):
        raise AdoptionError(f"The schema {plan.target_schema} already exists and was not made by this import.")
    placements.drop_schema(plan.target_schema)


def _copy_rows(src: psycopg.Connection, plan: TenantPlan, progress: Progress) -> dict[str, int]:
    """Every planned table from the source's snapshot into the new schema, in one target transaction."""
    tgt = connect(Placement(kind=Placement.Kind.SCHEMA, schema_name=plan.target_schema), plan.tenant_id)
    copied: dict[str, int] = {}
    src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        cur = tgt.cursor()  # the connection is in the tenant's RLS scope (GUC set for the session)
        for item in plan.tables:
            T, cols = sql.Identifier(item.name), sql.SQL(", ").join(sql.Identifier(c) for c in item.columns)
            cur.execute("DROP TABLE IF EXISTS pg_temp._import_in")
            cur.execute(sql.SQL("CREATE TEMP TABLE _import_in AS SELECT {} FROM {} WITH NO DATA").format(cols, T))
            out_sql = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(cols, qualified(plan.schema, item.name))
            with (
                src.cursor().copy(out_sql) as out,
                cur.copy(sql.SQL("COPY _import_in ({}) FROM STDIN").format(cols)) as into,
            ):
                for chunk in out:
                    into.write(chunk)
            inserted = [c for c in item.columns if c in item.table.insert_columns]
            # Only a renumbered table (the event log) needs the source's order: its new ids and hash chain follow it.
            renumbered = item.table.renumber and item.table.pk in item.columns
            order = sql.SQL(" ORDER BY {}").format(sql.Identifier(item.table.pk)) if renumbered else sql.SQL("")
            cur.execute(
                sql.SQL("INSERT INTO {t} ({cols}, tenant_id) SELECT {cols}, %s FROM _import_in{o}").format(
                    t=T, cols=sql.SQL(", ").join(sql.Identifier(c) for c in inserted), o=order
                ),
                [plan.tenant_id],
            )
            row = src.execute(sql.SQL("SELECT count(*) FROM {}").format(qualified(plan.schema, item.name))).fetchone()
            source_rows = int(row[0]) if row else -1
            if cur.rowcount != source_rows:
                raise AdoptionError(f"{item.name} has {source_rows} rows in the source but {cur.rowcount} were copied.")
            copied[item.name] = cur.rowcount
            progress(sum(copied.values()), sum(t.rows for t in plan.tables))
            if item.table.serial and not item.table.renumber and cur.rowcount:
                cur.execute(
                    sql.SQL("SELECT setval(pg_get_serial_sequence(%s, %s), max({})) FROM {}").format(
                        sql.Identifier(item.table.pk), T
                    ),
                    [item.name, item.table.pk],
                )
            cur.execute("DROP TABLE pg_temp._import_in")
        tgt.commit()
    finally:
        src.rollback()
        tgt.close()
    return copied


def _plan_for_schema() -> str:
    """The plan recorded for an imported tenant: the first whose level is `schema` (else the default)."""
    levels = getattr(settings, "TENANCY_PLAN_ISOLATION", {})
    return next((plan for plan, level in levels.items() if level == Tenant.Isolation.SCHEMA), Tenant.Plan.FREE)


def _register(plan: TenantPlan, copied: dict[str, int], *, source: str, actor: Actor) -> Tenant:
    """The control-plane rows of the imported tenant, in one transaction."""
    with transaction.atomic():
        placement = Placement.objects.create(kind=Placement.Kind.SCHEMA, schema_name=plan.target_schema, capacity=1)
        placement_state_refresh(placement)
        now = timezone.now()
        tenant = Tenant.objects.create(
            id=plan.tenant_id, slug=plan.slug, name=plan.name, isolation=Tenant.Isolation.SCHEMA,
            status=Tenant.Status.ACTIVE, status_changed_at=now, plan=_plan_for_schema(), placement=placement,
        )  # fmt: skip
        Domain.objects.create(domain=primary_domain_for(plan.slug), tenant=tenant, is_primary=True, verified=True)
        for host in plan.domains:
            Domain.objects.create(domain=host, tenant=tenant, verified=True, verified_at=now)
        TenantImport.objects.create(
            tenant=tenant, source_database=source, source_schema=plan.schema, source_tenant=plan.source_key[:64],
            tables=copied, left_out=plan.left_out, domains=plan.domains, source_migrations=plan.source_migrations,
            imported_by=actor_label(actor)[:150],
        )  # fmt: skip
        details = {"source": source, "schema": plan.schema, "placement": plan.target_schema, "rows": copied}
        tenant_event(tenant.pk, "TenantImported", **registered_data(tenant), **details)
        audit_record(
            actor=actor, action=AuditAction.TENANT_IMPORT, target_type="tenant", target_id=tenant.pk,
            summary=f"Imported {plan.slug} from django-tenants schema {plan.schema}", details=details,
        )  # fmt: skip
        transaction.on_commit(host_cache_clear)
    return tenant


def tenant_import_one(
    src: psycopg.Connection, plan: TenantPlan, *, source: str, actor: Actor, progress: Progress = lambda d, t: None
) -> Tenant:
    """Import one planned tenant: all of it, or (on any failure) nothing of it.

    Under a session advisory lock on (source, schema), so two imports of the same deployment at once
    cannot take each other's schema in progress for a leftover."""
    plan.tenant_id = str(uuid.uuid4())
    mark = _mark(source, plan.schema)
    with placements.owner_connect(autocommit=True) as lock:
        row = lock.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [_LOCK_KEY, mark]).fetchone()
        if not (row and row[0]):
            raise AdoptionError(f"Another import of the schema {plan.schema} is running.")
        if TenantImport.objects.filter(source_database=source, source_schema=plan.schema).exists():
            raise AdoptionError(f"The schema {plan.schema} was imported meanwhile.")
        _leftover_dropped(plan, source)
        placements.clone_template_schema(plan.target_schema, comment=mark)
        try:
            plan.copied = copied = _copy_rows(src, plan, progress)
            return _register(plan, copied, source=source, actor=actor)
        except BaseException:
            placements.drop_schema(plan.target_schema)
            raise
