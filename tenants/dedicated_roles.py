"""Give dedicated databases made before per-database roles their own roles (`repair_dedicated_roles`).

Until per-database login roles existed, every dedicated database was created from the template by
the shared owner role, with the shared app and data-plane roles allowed to connect, and its
placement stored the shared credentials: one tenant database's credentials opened every other.
`dedicated_roles_repair()` finds those databases and, for each:

1. creates the database's own owner and app login roles (`placements.dedicated_roles`), new
   passwords, comment `dedicated:<database>` — exactly what provisioning makes today;
2. hands the database and everything in its `public` schema to the new owner, grants the new app
   role what provisioning grants it, and takes from the shared owner, app and data-plane roles every
   privilege on the database, its schema, tables, sequences and functions, and their default
   privileges there;
3. stores the new credentials (encrypted) in the placement, audited, and drops this process's alias
   so the next use connects as the new app role.

Crash safety: every statement is idempotent and all of them run on every attempt. A database counts
as old while its placement holds credentials other than its own roles' *or* any shared role may
still connect, so a run interrupted after the credentials were stored but before the revokes is
finished by the next one. A run that finds nothing to do changes nothing (idempotent).

Other processes (web, workers) keep the connections they have opened as the old roles until those
close; restart them after a repair (docs/accounts.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from psycopg import sql

from audit.actions import AuditAction
from audit.services import audit_record
from core import dbroles
from core.actors import Actor
from tenants import placements
from tenants.crypto import decrypt_json, encrypt_json
from tenants.databases import unregister_alias
from tenants.models import Placement

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepairResult:
    repaired: list[str]  # database names given their own roles this run
    current: int  # dedicated databases that already had them


def _shared_roles() -> list[str]:
    return [settings.DB_OWNER_ROLE, settings.DB_APP_ROLE, settings.DB_DATA_ROLE]


def _needs_repair(placement: Placement) -> bool:
    owner_role, app_role = placements.dedicated_roles(placement.db_name)
    credentials = decrypt_json(placement.credentials_encrypted) if placement.credentials_encrypted else {}
    if (credentials.get("owner_user"), credentials.get("app_user")) != (owner_role, app_role):
        return True
    with dbroles.admin_connect() as admin:
        row = admin.execute(
            "SELECT bool_or(has_database_privilege(r.rolname, d.datname, 'CONNECT')) "
            "OR bool_or(d.datdba = r.oid) "
            "FROM pg_database d CROSS JOIN pg_roles r WHERE d.datname = %s AND r.rolname = ANY(%s)",
            [placement.db_name, _shared_roles()],
        ).fetchone()
    return bool(row and row[0])


def _credentials_for(placement: Placement) -> dict[str, str]:
    """The database's own credentials: those already stored (a rerun), else new passwords."""
    owner_role, app_role = placements.dedicated_roles(placement.db_name)
    stored = decrypt_json(placement.credentials_encrypted) if placement.credentials_encrypted else {}
    if (stored.get("owner_user"), stored.get("app_user")) == (owner_role, app_role):
        return stored
    return placements.new_dedicated_credentials(placement.db_name)


def _revoke_shared(name: str) -> None:
    """Every privilege of the shared roles on the database and inside it, each statement idempotent."""
    D = sql.Identifier(name)
    shared_owner, shared_app, shared_data = (sql.Identifier(r) for r in _shared_roles())
    with dbroles.admin_connect() as admin:
        for role in (shared_owner, shared_app, shared_data):
            admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(D, role))
            admin.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} RESET ALL").format(role, D))
    with dbroles.admin_connect(name) as admin:
        for role in (shared_owner, shared_app, shared_data):
            for text in (
                "REVOKE ALL ON SCHEMA public FROM {role}",
                "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}",
                "REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}",
                "REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {role}",
            ):
                admin.execute(sql.SQL(text).format(role=role))
        # The template's default privileges: for the shared owner, granting to the shared app role.
        for text in (
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} REVOKE ALL ON TABLES FROM {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} REVOKE ALL ON SEQUENCES FROM {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} REVOKE ALL ON FUNCTIONS FROM {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} REVOKE ALL ON SCHEMAS FROM {app}",
        ):
            admin.execute(sql.SQL(text).format(owner=shared_owner, app=shared_app))


def _repair_one(placement: Placement, *, actor: Actor) -> None:
    name = placement.db_name
    credentials = _credentials_for(placement)
    owner_role = credentials["owner_user"]
    # Roles, grants and ownership of `public` exactly as provisioning does them (the database exists,
    # so nothing is created); then the database itself changes owner and the shared roles lose it all.
    placements.create_dedicated_database(name, credentials=credentials)
    with dbroles.admin_connect() as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(owner_role)))
    _revoke_shared(name)
    with transaction.atomic():
        Placement.objects.filter(pk=placement.pk).update(credentials_encrypted=encrypt_json(credentials))
        audit_record(
            actor=actor,
            action=AuditAction.PLACEMENT_ROLES_REPAIR,
            target_type="placement",
            target_id=placement.pk,
            summary=f"Gave the dedicated database {name} its own login roles and revoked the shared ones",
            details={"database": name, "owner_role": owner_role, "app_role": credentials["app_user"]},
        )
    unregister_alias(placement.database_alias)  # the next use here connects as the new app role
    logger.info("dedicated database %s now has its own login roles", name)


def dedicated_roles_repair(*, actor: Actor) -> RepairResult:
    """Give every dedicated database that still uses the shared roles its own; idempotent."""
    repaired: list[str] = []
    current = 0
    for placement in Placement.objects.filter(kind=Placement.Kind.DATABASE).order_by("db_name"):
        if not dbroles.database_exists(placement.db_name):
            continue  # a placement row whose database is being created or dropped: not ours to touch
        if not _needs_repair(placement):
            current += 1
            continue
        _repair_one(placement, actor=actor)
        repaired.append(placement.db_name)
    return RepairResult(repaired=repaired, current=current)
