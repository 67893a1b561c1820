"""The control plane's record of which migrations each placement has applied (tenants.MigrationState).

Writers call `state_record` (or `states_record` in bulk) in the transaction that changes a
placement's migrations or learns them: provisioning after a placement's schema or database exists
(`placement_state_refresh`, which reads the placement), migration runs after each placement, the
periodic verification (migration_runs) after reading every placement. Readers (the Migrations
screen and API) never touch a tenant database.

Also here: where a target's migrations live (`Location`, `placement_location`), shared with the
bulk reader in migration_runs/plans.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import connections
from django.utils import timezone

from core import dbroles
from tenants import placements
from tenants.crypto import decrypt_json
from tenants.models import MigrationState, Placement

CONTROL = "control"
TEMPLATE_SCHEMA = "template_schema"
TEMPLATE_DATABASE = "template_database"
KIND_LABELS = {
    "control": "Control plane",
    "template_schema": "Template schema",
    "template_database": "Template database",
    "pool": "Pool schema",
    "schema": "Own schema",
    "database": "Dedicated database",
}


@dataclass
class Location:
    """Where one target records its migrations: server, database, schema, and how to connect as the owner."""

    key: str  # control | template_schema | template_database | placement:<id>
    kind: str
    label: str
    server: str
    dbname: str
    schema: str
    tenant_apps_only: bool
    placement_id: int | None = None
    conninfo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


def server_of(host: str | None, port: str | int | None) -> str:
    return f"{host or 'localhost'}:{port or 5432}"


def control_conninfo() -> dict[str, Any]:
    return dbroles.conninfo(connections.settings["owner"])


def control_server() -> str:
    owner = connections.settings["owner"]
    return server_of(owner.get("HOST"), owner.get("PORT"))


def placement_key(placement_id: int) -> str:
    return f"placement:{placement_id}"


def placement_location(p: Placement, control_db: str | None = None) -> Location:
    control_db = control_db or placements.control_plane_db()
    if p.database_alias != "default":  # a dedicated database, or a pool or schema on another server
        info = control_conninfo()
        creds = decrypt_json(p.credentials_encrypted) if p.credentials_encrypted else {}
        info.update(dbname=p.db_name)
        if creds.get("owner_user"):
            info.update(user=creds["owner_user"], password=creds.get("owner_password", ""))
        if p.db_host:
            info["host"] = p.db_host
        if p.db_port:
            info["port"] = p.db_port
        return Location(
            key=placement_key(p.pk),
            kind=p.kind,
            label=p.db_name if p.kind == Placement.Kind.DATABASE else f"{p.schema_name} ({p.db_host}:{p.db_port})",
            server=server_of(info.get("host"), info.get("port")),
            dbname=p.db_name,
            schema=p.schema_name,
            tenant_apps_only=True,
            placement_id=p.pk,
            conninfo=info,
        )
    return Location(
        key=placement_key(p.pk),
        kind=p.kind,
        label=p.schema_name,
        server=control_server(),
        dbname=control_db,
        schema=p.schema_name,
        tenant_apps_only=True,
        placement_id=p.pk,
    )


def digest_of(applied: list[str]) -> str:
    return hashlib.md5("\n".join(applied).encode(), usedforsecurity=False).hexdigest()


@dataclass
class Observed:
    """What a writer knows of one target now."""

    location: Location
    applied: Iterable[str]  # "app.name"
    missing: bool = False


def _row(seen: Observed, now: Any, *, verified: bool) -> MigrationState:
    loc = seen.location
    if loc.placement_id is None:
        raise ValueError(f"Only placements have a recorded migration state, not {loc.key}.")
    applied = sorted(set(seen.applied))
    return MigrationState(
        placement_id=loc.placement_id,
        kind=loc.kind,
        label=loc.label[:200],
        server=loc.server[:300],
        applied=applied,
        digest=digest_of(applied),
        missing=seen.missing,
        recorded_at=now,
        verified_at=now if verified else None,
        drift="",
        error="",
    )


_FIELDS = ["kind", "label", "server", "applied", "digest", "missing", "recorded_at", "drift", "error"]


def states_record(observed: list[Observed], *, verified: bool = False) -> None:
    """Upsert what writers just learnt about placements (one statement per 1,000; clears drift and
    error: this is the truth now)."""
    if not observed:
        return
    now = timezone.now()
    rows = [_row(seen, now, verified=verified) for seen in observed]
    MigrationState.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["placement"],
        update_fields=_FIELDS + (["verified_at"] if verified else []),
        batch_size=1000,
    )


def state_record(location: Location, applied: Iterable[str], *, missing: bool = False) -> None:
    states_record([Observed(location, applied, missing)])


def _read_applied(location: Location, cursor: Any = None) -> set[str] | None:
    if cursor is not None:
        applied = placements.applied_in(cursor, location.schema)
    elif location.conninfo:
        with psycopg.connect(**location.conninfo, autocommit=True, connect_timeout=10) as conn:
            applied = placements.applied_in(conn.cursor(), location.schema)
    else:
        with connections["owner"].cursor() as owner:  # placements in the control-plane database
            applied = placements.applied_in(owner, location.schema)
    return None if applied is None else {f"{app}.{name}" for app, name in applied}


def placement_state_refresh(placement: Placement, *, cursor: Any = None) -> None:
    """Read the placement's migration table and record it. Provisioning calls this once the
    placement's schema or database exists (safe to repeat); `cursor`, if given, is already
    connected to the placement's database with read access to its django_migrations."""
    location = placement_location(placement)
    applied = _read_applied(location, cursor)
    state_record(location, applied or [], missing=applied is None)
