"""Applying a placement's pending TENANT_APPS migrations cheaply, many placements per worker process.

Django's MigrationExecutor (what `migrate` and tenants.placements.migrate_placement use) loads the
migration files and rebuilds the project state from every applied migration for each placement.
Across hundreds of placements with the same history that work is identical, so here, per worker
process:
- the migration graph is loaded once (per MIGRATION_MODULES setting);
- the project state "after these applied migrations" is built once per distinct applied set and
  cloned for each placement;
- each placement runs in one transaction on a kept-open owner connection: `SET LOCAL search_path`,
  read its django_migrations, apply each pending migration exactly as the executor does
  (`migration.apply` in an atomic schema editor, then record it), commit. Nothing pending ⇒
  nothing opened beyond that one read.
Anything unusual — no django_migrations table yet, a non-atomic migration, a squashed migration
among the placements' own — falls back to the tenancy core's executor (`tenants.placements.migrate_placement`).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from psycopg import sql

from core import tenancy
from tenants import placements
from tenants.databases import register_placement
from tenants.validation import validate_schema_name

MigrationKey = tuple[str, str]
_lock = threading.Lock()
_loaders: dict[str, MigrationLoader] = {}
_states: dict[tuple[str, frozenset], Any] = {}


class NeedsFullExecutor(Exception):
    """This placement needs Django's full executor (first migration, non-atomic or squashed migrations)."""


def _loader() -> tuple[str, MigrationLoader]:
    key = repr(sorted((settings.MIGRATION_MODULES or {}).items()))
    with _lock:
        if key not in _loaders:
            _loaders.clear()
            _states.clear()
            _loaders[key] = MigrationLoader(None, ignore_no_migrations=True)
        return key, _loaders[key]


def _tenant_order(loader: MigrationLoader) -> list[MigrationKey]:
    labels = set(placements.tenant_app_labels())
    ordered: list[MigrationKey] = []
    seen: set[MigrationKey] = set()
    for leaf in sorted(n for n in loader.graph.leaf_nodes() if n[0] in labels):
        for node in loader.graph.forwards_plan(leaf):
            if node not in seen:
                seen.add(node)
                ordered.append(node)
    return ordered


def _squashed_in(loader: MigrationLoader, order: list[MigrationKey]) -> bool:
    """Whether a squashed migration is among the placements' migrations (then Django's executor
    decides between it and the ones it replaces). Squashes elsewhere in the project do not count: a
    control-plane app's (django-otp-webauthn ships one) sent every placement to the slow path."""
    return any(key in loader.replacements for key in order)


def _state_after(loader_key: str, loader: MigrationLoader, applied: frozenset):
    cache_key = (loader_key, applied)
    with _lock:
        cached = _states.get(cache_key)
    if cached is None:
        cached = (
            loader.project_state(nodes=sorted(applied), at_end=True)
            if applied
            else loader.project_state(nodes=[], at_end=False)
        )
        with _lock:
            _states[cache_key] = cached
    return cached.clone()


PRIVATE_ALIAS = "migration_runs__owner"


def _private_owner_alias() -> str:
    """This process' own owner connection for placements in the control-plane database, kept open
    between jobs (CONN_MAX_AGE=None; Celery closes connections that are obsolete after every task)
    and never shared with code that may be inside a transaction."""
    if PRIVATE_ALIAS not in connections.settings:
        with _lock:
            if PRIVATE_ALIAS not in connections.settings:
                config = copy.deepcopy(connections.settings["owner"])
                config["CONN_MAX_AGE"] = None
                connections.settings[PRIVATE_ALIAS] = config
    return PRIVATE_ALIAS


def _alias_and_schema(placement: Any) -> tuple[str, str]:
    if placement.database_alias == "default":
        return _private_owner_alias(), validate_schema_name(placement.schema_name)
    register_placement(placement)
    # A dedicated database's tables are in public; a pool or own schema on another server in its schema.
    schema = placement.schema_name or "public"
    return placement.owner_alias, schema if schema == "public" else validate_schema_name(schema)


@dataclass
class Applied:
    now: list[MigrationKey]  # what this call applied ([] = nothing to do)
    after: set[MigrationKey] | None  # everything applied afterwards; None when Django's executor ran


def apply_pending(placement: Any) -> Applied:
    """Apply this placement's pending TENANT_APPS migrations."""
    loader_key, loader = _loader()
    order = _tenant_order(loader)
    alias, schema = _alias_and_schema(placement)
    connection = connections[alias]
    if connection.connection is not None and not connection.is_usable():
        connection.close()  # kept open between jobs; a server restart must not fail the next job
    with tenancy.placement_migration():
        try:
            if connection.in_atomic_block:
                # SET LOCAL would outlive our savepoint inside the caller's transaction: use the core's
                # executor, which works on a private connection.
                raise NeedsFullExecutor
            with transaction.atomic(using=alias):
                with connection.cursor() as cursor:
                    cursor.execute(
                        sql.SQL("SET LOCAL search_path TO {}, pg_temp").format(sql.Identifier(schema)).as_string(None)
                    )
                    cursor.execute("SELECT to_regclass('django_migrations') IS NOT NULL")
                    if not cursor.fetchone()[0]:
                        raise NeedsFullExecutor  # never migrated: the executor creates the table
                    cursor.execute("SELECT app, name FROM django_migrations")
                    applied_rows = {(app, name) for app, name in cursor.fetchall()}
                pending = [key for key in order if key not in applied_rows]
                if not pending:
                    return Applied([], applied_rows)
                if _squashed_in(loader, order) or any(not loader.graph.nodes[key].atomic for key in pending):
                    raise NeedsFullExecutor
                applied = frozenset(key for key in order if key in applied_rows)
                project_state = _state_after(loader_key, loader, applied)
                for key in pending:
                    migration = loader.graph.nodes[key]
                    # atomic=False: the whole placement is already one transaction (all or nothing).
                    with connection.schema_editor(atomic=False) as editor:
                        project_state = migration.apply(project_state, editor)
                    with connection.cursor() as cursor:
                        # What MigrationRecorder.record_applied stores, without its per-call table introspection.
                        cursor.execute(
                            "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, %s)",
                            [key[0], key[1], timezone.now()],
                        )
                return Applied(pending, applied_rows | set(pending))
        except NeedsFullExecutor:
            return Applied(placements.migrate_placement(placement), None)
        finally:
            if alias != PRIVATE_ALIAS:
                connection.close()  # one connection per dedicated database would pile up in a long-lived worker
