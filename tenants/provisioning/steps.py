"""Provisioning as idempotent steps with compensations, one list per isolation level.

    PROVISIONING_STEPS[isolation] = [Step(name, action, compensate, title), ...]

Every action takes the tenant id, is safe to run twice (it checks what
already exists), and every compensation removes exactly what its action may
have created — no orphan schema, database, alias or row — and is itself safe
to run twice or after a failed/partial action. The provisioning sagas (sagas.py) run them
as saga steps on the job engine, through Celery.

Why one module: each step and its compensation are read side by side, and the three levels share
the pool, template and server helpers; split, an action and its undo would drift apart.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from core.errors import ApplicationError
from tenants import placements, servers
from tenants.context import tenant_context
from tenants.crypto import decrypt_json, encrypt_json
from tenants.databases import register_placement, unregister_alias
from tenants.lifecycle import tenant_event
from tenants.logs import tenant_log_purge
from tenants.migration_state import placement_state_refresh
from tenants.models import Domain, Placement, Tenant
from tenants.selectors import host_cache_clear, primary_domain_for
from tenants.validation import schema_name_for_slug
from workspace import interface as workspace

logger = logging.getLogger(__name__)
TenantId = uuid.UUID | str
_POOL_LOCK_KEY = 0x7E4A50


class ProvisioningError(ApplicationError):
    """A step could not complete; the message is one sentence for the operator."""


@dataclass(frozen=True)
class Step:
    name: str
    action: Callable[[TenantId], None]
    compensate: Callable[[TenantId], None]
    title: str


def _tenant(tenant_id: TenantId) -> Tenant:
    return Tenant.objects.select_related("placement").get(pk=tenant_id)


def _tenant_or_none(tenant_id: TenantId) -> Tenant | None:
    return Tenant.objects.select_related("placement").filter(pk=tenant_id).first()


def tenant_models() -> list:
    labels = {label.rsplit(".", 1)[-1] for label in settings.TENANT_APPS}
    return [m for m in apps.get_models() if m._meta.app_label in labels]


def _noop(tenant_id: TenantId) -> None:
    return None


# --- lifecycle -----------------------------------------------------------------------


def _set_status(tenant_id: TenantId, rows: Any, target: str, event_type: str, **data: Any) -> int:
    """Conditional status change plus its lifecycle event, in one transaction; returns rows changed."""
    with transaction.atomic():
        updated = rows.update(status=target, status_changed_at=timezone.now())
        if updated:
            tenant_event(tenant_id, event_type, status=target, **data)
    return updated


def begin(tenant_id: TenantId) -> None:
    rows = Tenant.objects.filter(pk=tenant_id, status__in=[Tenant.Status.PENDING, Tenant.Status.FAILED])
    _set_status(tenant_id, rows, Tenant.Status.PROVISIONING, "TenantProvisioningStarted")


def begin_compensate(tenant_id: TenantId) -> None:
    rows = Tenant.objects.filter(pk=tenant_id).exclude(status__in=[Tenant.Status.DELETED, Tenant.Status.FAILED])
    _set_status(tenant_id, rows, Tenant.Status.FAILED, "TenantProvisioningFailed")


def activate(tenant_id: TenantId) -> None:
    tenant = _tenant(tenant_id)
    rows = Tenant.objects.filter(pk=tenant_id, status=Tenant.Status.PROVISIONING)
    placement = tenant.placement
    where = (
        {"placement_kind": placement.kind, "schema": placement.schema_name, "database": placement.db_name or None}
        if placement is not None
        else {}
    )
    updated = _set_status(tenant_id, rows, Tenant.Status.ACTIVE, "TenantActivated", **where)
    if not updated and not Tenant.objects.filter(pk=tenant_id, status=Tenant.Status.ACTIVE).exists():
        raise ProvisioningError("The tenant is no longer being provisioned.")
    host_cache_clear()


def activate_compensate(tenant_id: TenantId) -> None:
    rows = Tenant.objects.filter(pk=tenant_id, status=Tenant.Status.ACTIVE)
    _set_status(tenant_id, rows, Tenant.Status.PROVISIONING, "TenantDeactivated")
    host_cache_clear()


# --- placement: shared pool --------------------------------------------------------


def _open_pool(server: Any = None) -> Placement:
    """A new pool_<n> placement on `server` (default: the least full active server taking shared
    placements); the schema is cloned first, so a row always has its schema. Pool numbers are
    unique over every server."""
    server = servers.server_choose(isolation=Tenant.Isolation.SHARED, server=server)
    at = servers.server_target(server)
    existing = Placement.objects.filter(kind=Placement.Kind.POOL).values_list("schema_name", flat=True)
    numbers = [int(name.removeprefix("pool_")) for name in existing if name.removeprefix("pool_").isdigit()]
    schema = f"pool_{max(numbers, default=0) + 1}"
    if not placements.schema_exists(schema, at=at):
        placements.clone_template_schema(schema, at=at)
    pool = Placement.objects.create(
        kind=Placement.Kind.POOL, schema_name=schema, capacity=settings.TENANCY_POOL_CAPACITY,
        **servers.location_fields(server),
    )  # fmt: skip
    placement_state_refresh(pool)  # in this transaction: no pool without its migration record
    return pool


def _pool_with_room(*, wait: bool) -> Placement | None:
    """The first pool with room, row-locked: one indexed query (placement_open_pool), whatever the
    number of pools. `wait=False` skips pools another placement holds (it may be filling them)."""
    pools = servers.pools_with_room().order_by("id")  # only pools of active servers taking shared
    return pools.select_for_update(skip_locked=not wait).first()


def place_in_pool(tenant_id: TenantId) -> None:
    """Point the tenant at a pool with room, opening a new pool only when every pool is full.

    Concurrent placements do not queue behind one lock: each takes the first pool nobody else holds
    (SKIP LOCKED); if every pool with room is held, it waits for the first one, and PostgreSQL re-checks
    `tenant_count < capacity` on the row once it is free, moving on if the pool filled meanwhile. The
    count is raised by the trigger on tenants_tenant in this transaction, before the lock is released.
    Only opening a pool is serialised (an advisory lock), so two placements never open two pools.
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        if tenant.placement_id:
            return
        pool = _pool_with_room(wait=False) or _pool_with_room(wait=True)
        if pool is None:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_POOL_LOCK_KEY])  # one pool opener at a time
            try:
                pool = _pool_with_room(wait=True) or _open_pool()  # another opener may have just made one
            except servers.NoServerRoom as exc:
                raise ProvisioningError(str(exc)) from None
        tenant.placement = pool
        tenant.save(update_fields=["placement", "updated_at"])


def purge_tenant_rows(tenant_id: TenantId) -> None:
    """Delete every data-plane row of the tenant in its placement (RLS limits it to this tenant)."""
    tenant = _tenant_or_none(tenant_id)
    if tenant is None or tenant.placement is None:
        return
    with tenant_context(tenant) as alias:
        for model in reversed(tenant_models()):
            if getattr(model, "append_only", False):
                continue  # the app role may not delete events; purged as the owner below
            model.objects.using(alias).all().delete()
    tenant_log_purge(tenant)


def place_in_pool_compensate(tenant_id: TenantId) -> None:
    purge_tenant_rows(tenant_id)
    Tenant.objects.filter(pk=tenant_id).update(placement=None)


# --- placement: own schema ------------------------------------------------------------


def _schema_placement(schema: str) -> Placement | None:
    """The placement named `schema`, on whichever server (schema names are unique over servers)."""
    return (
        Placement.objects.select_related("server")
        .filter(schema_name=schema)
        .exclude(kind=Placement.Kind.DATABASE)
        .first()
    )


def _server_for(isolation: str) -> Any:
    """The server a new placement goes to (servers.server_choose); no room anywhere is the saga's one sentence."""
    try:
        return servers.server_choose(isolation=isolation)
    except servers.NoServerRoom as exc:
        raise ProvisioningError(str(exc)) from None


def create_schema(tenant_id: TenantId) -> None:
    """The placement row on the chosen server first (a retry finds it, and its server), then the DDL."""
    tenant = _tenant(tenant_id)
    schema = schema_name_for_slug(tenant.slug)
    placement = _schema_placement(schema)
    if placement is None:
        server = _server_for(Tenant.Isolation.SCHEMA)
        placement, _ = Placement.objects.get_or_create(
            schema_name=schema, database_alias=servers.server_alias(server),
            defaults={"kind": Placement.Kind.SCHEMA, "capacity": 1, **servers.location_fields(server)},
        )  # fmt: skip
    if placement.kind != Placement.Kind.SCHEMA or placement.tenants.exclude(pk=tenant.pk).exists():
        raise ProvisioningError(f"The schema {schema} already belongs to something else.")
    at = servers.placement_target(placement)
    if not placements.schema_exists(schema, at=at):
        placements.clone_template_schema(schema, at=at)
    placement_state_refresh(placement)
    if tenant.placement_id != placement.pk:
        Tenant.objects.filter(pk=tenant.pk).update(placement=placement)


def create_schema_compensate(tenant_id: TenantId) -> None:
    tenant = _tenant_or_none(tenant_id)
    if tenant is None:
        return
    schema = schema_name_for_slug(tenant.slug)
    placement = _schema_placement(schema)
    if placement is not None and (
        placement.kind != Placement.Kind.SCHEMA or placement.tenants.exclude(pk=tenant.pk).exists()
    ):
        return  # not ours
    Tenant.objects.filter(pk=tenant.pk).update(placement=None)
    placements.drop_schema(schema, at=servers.placement_target(placement))
    if placement is not None:
        placement.delete()


# --- placement: dedicated database -----------------------------------------------------


def _dedicated_alias(slug: str) -> str:
    return "tdb_" + slug.replace("-", "_")


def create_database(tenant_id: TenantId) -> None:
    """The placement row (with the new database's own roles, passwords encrypted) first, then the
    roles, database and grants — each statement idempotent, all of them run on every attempt."""
    tenant = _tenant(tenant_id)
    db_name = placements.dedicated_database_name(tenant.slug)
    alias = _dedicated_alias(tenant.slug)
    placement = Placement.objects.select_related("server").filter(database_alias=alias, schema_name="public").first()
    if placement is None:
        server = _server_for(Tenant.Isolation.DEDICATED)
        placement, _ = Placement.objects.get_or_create(
            database_alias=alias, schema_name="public", defaults=dedicated_fields(server, db_name)
        )
    if placement.tenants.exclude(pk=tenant.pk).exists():
        raise ProvisioningError(f"The database {db_name} already belongs to another tenant.")
    placements.create_dedicated_database(
        placement.db_name, credentials=decrypt_json(placement.credentials_encrypted),
        at=servers.placement_target(placement),
    )  # fmt: skip
    if tenant.placement_id != placement.pk:
        Tenant.objects.filter(pk=tenant.pk).update(placement=placement)


def dedicated_fields(server: Any, db_name: str) -> dict[str, Any]:
    """A new dedicated placement's fields on `server` (its own roles, passwords encrypted)."""
    at = servers.server_target(server)
    return {
        "kind": Placement.Kind.DATABASE, "db_name": db_name, "capacity": 1, "server": server,
        "db_host": at.host if at else settings.TENANCY_DEDICATED_HOST,
        "db_port": at.port if at else settings.TENANCY_DEDICATED_PORT,
        "credentials_encrypted": encrypt_json(placements.new_dedicated_credentials(db_name)),
    }  # fmt: skip


def create_database_compensate(tenant_id: TenantId) -> None:
    tenant = _tenant_or_none(tenant_id)
    if tenant is None:
        return
    alias = _dedicated_alias(tenant.slug)
    placement = (
        Placement.objects.select_related("server").filter(database_alias=alias, kind=Placement.Kind.DATABASE).first()
    )
    if placement is not None and placement.tenants.exclude(pk=tenant.pk).exists():
        return
    Tenant.objects.filter(pk=tenant.pk).update(placement=None)
    unregister_alias(alias)
    db_name = placement.db_name if placement else placements.dedicated_database_name(tenant.slug)
    at = servers.placement_target(placement)
    placements.drop_database(db_name, at=at)
    placements.drop_dedicated_roles(db_name, at=at)
    if placement is not None:
        placement.delete()


def verify_database(tenant_id: TenantId) -> None:
    """The dedicated database answers as the app role, has every data-plane table, RLS forced."""
    tenant = _tenant(tenant_id)
    if tenant.placement is None or not tenant.placement.is_dedicated:
        raise ProvisioningError("The tenant has no dedicated database yet.")
    alias = register_placement(tenant.placement)
    expected = {m._meta.db_table for m in tenant_models()}
    with tenant_context(tenant), connections[alias].cursor() as cursor:
        cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        if cursor.fetchone()[0]:
            raise ProvisioningError("The dedicated database connection may bypass row-level security.")
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relrowsecurity AND c.relforcerowsecurity"
        )
        protected = {row[0] for row in cursor.fetchall()}
    # As the database's owner: its app role may not read django_migrations (least privilege).
    placement_state_refresh(tenant.placement)
    missing = expected - protected
    if missing:
        raise ProvisioningError(f"The dedicated database lacks protected tables: {', '.join(sorted(missing))}.")


# --- data plane and domain --------------------------------------------------------------


def create_owner_member(tenant_id: TenantId) -> None:
    tenant = _tenant(tenant_id)
    if not tenant.owner_email:
        return
    with tenant_context(tenant):
        workspace.owner_member_ensure(email=tenant.owner_email)  # no password until the set-password link


def create_owner_member_compensate(tenant_id: TenantId) -> None:
    tenant = _tenant_or_none(tenant_id)
    if tenant is None or tenant.placement is None or not tenant.owner_email:
        return
    with tenant_context(tenant):
        workspace.owner_member_remove(email=tenant.owner_email)


def create_domain(tenant_id: TenantId) -> None:
    tenant = _tenant(tenant_id)
    host = primary_domain_for(tenant.slug)
    # A renamed tenant's old host whose redirect period is over is free again.
    Domain.objects.filter(domain=host, redirect_until__lte=timezone.now()).delete()
    domain, _ = Domain.objects.get_or_create(
        domain=host, defaults={"tenant": tenant, "is_primary": True, "verified": True}
    )
    if domain.tenant_id != tenant.pk:
        raise ProvisioningError(f"The domain {host} already belongs to another tenant.")


def create_domain_compensate(tenant_id: TenantId) -> None:
    Domain.objects.filter(tenant_id=tenant_id).delete()
    host_cache_clear()


_BEGIN = Step("begin", begin, begin_compensate, "Mark the tenant as provisioning")
_MEMBER = Step("create_owner_member", create_owner_member, create_owner_member_compensate, "Create the owner member")
_DOMAIN = Step("create_domain", create_domain, create_domain_compensate, "Create the workspace domain")
_ACTIVATE = Step("activate", activate, activate_compensate, "Activate the tenant")

PROVISIONING_STEPS: dict[str, list[Step]] = {
    Tenant.Isolation.SHARED: [
        _BEGIN,
        Step("place_in_pool", place_in_pool, place_in_pool_compensate, "Place in a shared pool (open one if full)"),
        _MEMBER,
        _DOMAIN,
        _ACTIVATE,
    ],
    Tenant.Isolation.SCHEMA: [
        _BEGIN,
        Step("create_schema", create_schema, create_schema_compensate, "Clone the template schema"),
        _MEMBER,
        _DOMAIN,
        _ACTIVATE,
    ],
    Tenant.Isolation.DEDICATED: [
        _BEGIN,
        Step("create_database", create_database, create_database_compensate, "Create the database from the template"),
        Step("verify_database", verify_database, _noop, "Verify the database and its row-level security"),
        _MEMBER,
        _DOMAIN,
        _ACTIVATE,
    ],
}
