"""The server registry: which PostgreSQL servers placements live on, and choosing one by capacity.

    server = server_register(name="pg2", host="10.0.0.7", port="5432", admin_user="postgres",
                             admin_password="…", actor=request.user)
    server = server_choose(isolation="schema")        # the least full active server taking the level
    at = placement_target(placement)                  # None on `default`, else a placements.ServerTarget

`default` is the control plane's own server (DATABASE_URL), seeded by migration 0008 and re-made
here if a test flush emptied the table. Every other server holds its pools and own schemas in a
"tenant data" database (`<control-plane db>_tenant_data`) and its dedicated databases beside it; the
project's owner, app and data roles are created there at registration, through the server's admin
login, which is stored encrypted like placement credentials (tenants.crypto). Registration connects
first: a bad host, port or login is one sentence and nothing is saved.

Health per server is tenants/server_health.py (a job on the engine, scheduled by beat).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import psycopg
from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import Count, F, Q
from django.http import HttpRequest

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, SystemActor
from core.errors import ApplicationError, Conflict, InvalidInput
from tenants import placements
from tenants.crypto import decrypt_json, encrypt_json
from tenants.models import Placement, Server, ServerStatus

REGISTRATION = SystemActor("server registration")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
LEVEL_FLAGS = {"shared": "takes_shared", "schema": "takes_schema", "dedicated": "takes_dedicated"}
CAPACITY_MAX = 10_000_000  # placements; the column is a 32-bit integer, and no server holds more


class NoServerRoom(ApplicationError):
    """No active server takes the level and has room; the message says so in one sentence."""


# --- selectors --------------------------------------------------------------------------------

# A DNS name, an IPv4 address or an IPv6 one (with or without brackets); anything else never resolves.
_HOST = re.compile(r"^\[?[A-Za-z0-9.:-]+\]?$")


def server_default() -> Server:
    """The control plane's own server (re-made if a flush emptied the table)."""
    server = Server.objects.filter(is_default=True).first()
    if server is not None:
        return server
    owner = connections.settings["owner"]
    try:
        with transaction.atomic():
            return Server.objects.create(
                name="default", is_default=True, host=owner.get("HOST") or "", port=str(owner.get("PORT") or ""),
                capacity=settings.TENANCY_DEFAULT_SERVER_CAPACITY,
            )  # fmt: skip
    except IntegrityError:  # made concurrently
        return Server.objects.get(is_default=True)


def server_get(name: str) -> Server:
    server = Server.objects.filter(name=name).first() if name else None
    if server is None and name == "default":
        return server_default()
    if server is None:
        known = ", ".join(Server.objects.values_list("name", flat=True)) or "default"
        raise InvalidInput(f"There is no database server “{name[:60]}”; known: {known}.")
    return server


def data_database_name() -> str:
    return placements.control_plane_db() + settings.TENANCY_SERVER_DATA_DATABASE_SUFFIX


def server_target(server: Server | None) -> placements.ServerTarget | None:
    """What the DDL functions of tenants.placements need to work on `server` (None: the control plane's)."""
    if server is None or server.is_default:
        return None
    admin = decrypt_json(server.admin_credentials_encrypted)
    return placements.ServerTarget(
        name=server.name, host=server.host, port=server.port, data_database=server.data_database,
        admin={"user": admin.get("user", ""), "password": admin.get("password", "")},
    )  # fmt: skip


def placement_server(placement: Any) -> Server:
    server = getattr(placement, "server", None)
    return server if server is not None else server_default()


def placement_target(placement: Any) -> placements.ServerTarget | None:
    """The server target of a placement (None for the control plane's server)."""
    if getattr(placement, "server_id", None) is None:
        return None
    return server_target(placement.server)


def server_alias(server: Server) -> str:
    """The connection alias of a server's tenant-data database (its pools and own schemas)."""
    return "default" if server.is_default else f"srv_{server.name.replace('-', '_')}"


def location_fields(server: Server) -> dict[str, Any]:
    """Placement fields for a pool or own schema on `server`."""
    if server.is_default:
        return {"server": server, "database_alias": "default"}
    return {
        "server": server, "database_alias": server_alias(server), "db_name": server.data_database,
        "db_host": server.host, "db_port": server.port,
        "credentials_encrypted": encrypt_json(placements.local_credentials()),
    }  # fmt: skip


def placement_counts() -> dict[int, int]:
    """Placements per server id (rows without a server count for `default`): one grouped count."""
    grouped: dict[int | None, int] = dict(
        Placement.objects.values("server_id").annotate(n=Count("id")).values_list("server_id", "n")
    )
    legacy = grouped.pop(None, 0)
    counts = {pk: n for pk, n in grouped.items() if pk is not None}
    if legacy:  # rows older than the registry live on default
        default = server_default()
        counts[default.pk] = counts.get(default.pk, 0) + legacy
    return counts


def server_list() -> list[Server]:
    """Every server with `placements_count` and `health` (its ServerStatus or None), default first."""
    server_default()
    counts = placement_counts()
    servers = list(Server.objects.select_related("status").order_by("-is_default", "name"))
    for server in servers:
        server.placements_count = counts.get(server.pk, 0)  # type: ignore[attr-defined]
        server.health = server.status if _has_status(server) else None  # type: ignore[attr-defined]
    return servers


def _has_status(server: Server) -> bool:
    try:
        server.status  # noqa: B018  (select_related filled it, or raises)
    except ServerStatus.DoesNotExist:
        return False
    return True


def server_choose(*, isolation: str, server: Server | None = None) -> Server:
    """The server a new placement of `isolation` goes to: `server` if given (checked), else the least
    full active server taking that level (placements ÷ capacity, below capacity), so servers fill in
    proportion to their capacities; on equal shares the one with more free room, then default. By
    free room alone, a server registered with 1,000 next to the default server's 100,000 got nothing
    until default held 99,000 placements. A handful of servers: one grouped count over the
    placements' server index."""
    if server is not None:
        server_check_takes(server, isolation)
        return server
    server_default()
    candidates = Server.objects.filter(state=Server.State.ACTIVE, **{LEVEL_FLAGS[isolation]: True})
    counts = placement_counts()
    ranked = sorted(
        (s for s in candidates if counts.get(s.pk, 0) < s.capacity),
        key=lambda s: (
            Fraction(counts.get(s.pk, 0), s.capacity),
            -(s.capacity - counts.get(s.pk, 0)),
            not s.is_default,
            s.name,
        ),
    )
    if not ranked:
        raise NoServerRoom(f"No active database server takes {isolation} placements and has room for one more.")
    return ranked[0]


def server_check_takes(server: Server, isolation: str) -> None:
    if server.state != Server.State.ACTIVE:
        raise InvalidInput(f"The server {server.name} is draining; it takes no new placements.")
    if not server.takes(isolation):
        raise InvalidInput(f"The server {server.name} does not take {isolation} placements.")
    if placement_counts().get(server.pk, 0) >= server.capacity:
        raise InvalidInput(f"The server {server.name} is full ({server.capacity} placements).")


def shared_server_ids() -> list[int | None]:
    """Servers whose pools may take new tenants (active, taking shared); None stands for legacy rows."""
    default = server_default()
    ids: list[int | None] = list(
        Server.objects.filter(state=Server.State.ACTIVE, takes_shared=True).values_list("pk", flat=True)
    )
    if default.pk in ids:
        ids.append(None)
    return ids


# --- services ---------------------------------------------------------------------------------


def _probe(info: dict[str, Any]) -> str | None:
    """None when the admin login works and may create roles and databases, else one sentence."""
    where = f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}"
    try:
        with psycopg.connect(**info, dbname="postgres", autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT rolsuper OR (rolcreaterole AND rolcreatedb) FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no answer"
        if "password" in reason.lower() or "authentication" in reason.lower():
            return f"The server at {where} refused the admin login."
        return f"Could not connect to a PostgreSQL server at {where}."
    if not row or not row[0]:
        return f"The admin login on {where} may not create roles and databases."
    return None


def server_register(
    *, name: str, host: str, port: str | int = "5432", admin_user: str = "postgres", admin_password: str = "",
    capacity: int = 1000, takes_shared: bool = True, takes_schema: bool = True, takes_dedicated: bool = True,
    actor: Actor = REGISTRATION, request: HttpRequest | None = None,
) -> Server:  # fmt: skip
    """Connect to the server as `admin_user`, create the project's roles and its tenant-data database
    there, then record it (credentials encrypted) with its audit row. Raises InvalidInput with one
    sentence — a bad host, port or login, a taken name or address — and then nothing is saved."""
    name = (name or "").strip().lower()
    host, port = (host or "").strip(), str(port or "5432").strip()
    if not _NAME.match(name):
        raise InvalidInput("A server name is 1–40 lowercase letters, digits, '-' or '_', starting with a letter.")
    if not host or not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise InvalidInput("Give the server's host and a port between 1 and 65535.")
    if len(host) > 253 or not _HOST.match(host):
        raise InvalidInput("The host must be a host name or an IP address (letters, digits, '.', '-', ':').")
    _check_capacity_and_levels(capacity, takes_shared, takes_schema, takes_dedicated)
    if Server.objects.filter(name=name).exists():
        raise InvalidInput(f"A server named {name} is already registered.")
    if any(s.host == host and s.port == port for s in server_list()) or _is_control_server(host, port):
        raise InvalidInput(f"The server at {host}:{port} is already registered.")
    info = {"host": host, "port": port, "user": admin_user, "password": admin_password}
    problem = _probe({k: v for k, v in info.items() if v})
    if problem:
        raise InvalidInput(problem)
    at = placements.ServerTarget(
        name=name, host=host, port=port, data_database=data_database_name(),
        admin={"user": admin_user, "password": admin_password},
    )  # fmt: skip
    try:
        placements.server_data_database_ensure(at)  # idempotent: a retry after a failure finishes it
    except psycopg.Error as exc:
        raise InvalidInput(f"Could not prepare the server at {host}:{port}: {str(exc).strip()[:150]}") from None
    try:
        with transaction.atomic():
            server = Server.objects.create(
                name=name, host=host, port=port, data_database=at.data_database, capacity=capacity,
                admin_credentials_encrypted=encrypt_json({"user": admin_user, "password": admin_password}),
                takes_shared=takes_shared, takes_schema=takes_schema, takes_dedicated=takes_dedicated,
            )  # fmt: skip
            audit_record(
                actor=actor, action=AuditAction.SERVER_REGISTER, target_type="server", target_id=server.pk,
                summary=f"Registered database server {name} ({host}:{port})", request=request,
                details={"name": name, "address": f"{host}:{port}", "capacity": capacity, "levels": server.levels},
            )  # fmt: skip
    except IntegrityError:
        raise InvalidInput(f"A server named {name} is already registered.") from None
    return server


def _check_capacity_and_levels(capacity: int, *levels: bool) -> None:
    if not 1 <= capacity <= CAPACITY_MAX:
        raise InvalidInput(f"A server's capacity is between 1 and {CAPACITY_MAX:,} placements.")
    if not any(levels):
        raise InvalidInput("A server must take at least one isolation level.")


def _is_control_server(host: str, port: str) -> bool:
    owner = connections.settings["owner"]
    same_host = host in {owner.get("HOST") or "localhost", "localhost", "127.0.0.1"} and (
        (owner.get("HOST") or "localhost") in {"localhost", "127.0.0.1", host}
    )
    return same_host and port == str(owner.get("PORT") or "5432")


def server_set_state(*, server: Server, state: str, actor: Actor, request: HttpRequest | None = None) -> Server:
    """Drain (no new placements; existing ones stay and serve) or re-activate a server, audited."""
    if state not in Server.State.values:
        raise InvalidInput("A server is either active or draining.")
    with transaction.atomic():
        updated = Server.objects.filter(pk=server.pk).exclude(state=state).update(state=state)
        if not updated:
            raise Conflict(f"The server {server.name} is already {state}.")
        action = AuditAction.SERVER_DRAIN if state == Server.State.DRAINING else AuditAction.SERVER_ACTIVATE
        audit_record(
            actor=actor, action=action, target_type="server", target_id=server.pk, request=request,
            summary=f"{'Draining' if state == Server.State.DRAINING else 'Re-activated'} database server {server.name}",
            details={"name": server.name, "state": state},
        )  # fmt: skip
    server.refresh_from_db()
    return server


def server_change(
    *, server: Server, capacity: int | None = None, takes_shared: bool | None = None,
    takes_schema: bool | None = None, takes_dedicated: bool | None = None,
    actor: Actor, request: HttpRequest | None = None,
) -> Server:  # fmt: skip
    """Change how many placements a server may hold and which levels it takes (None keeps the current
    value, read from the locked row), audited with the old and new values. Placements already there
    stay and serve; a capacity under the placements it holds only means it takes no new ones (like
    draining). Raises InvalidInput (one sentence, nothing saved) or Conflict when nothing would change."""
    given = {"capacity": capacity, "takes_shared": takes_shared, "takes_schema": takes_schema,
             "takes_dedicated": takes_dedicated}  # fmt: skip
    with transaction.atomic():
        current = Server.objects.select_for_update().filter(pk=server.pk).first()
        if current is None:
            raise InvalidInput("There is no such database server.")
        old = {field: getattr(current, field) for field in given}
        new: dict[str, Any] = {field: old[field] if value is None else value for field, value in given.items()}
        _check_capacity_and_levels(new["capacity"], new["takes_shared"], new["takes_schema"], new["takes_dedicated"])
        if old == new:
            raise Conflict(f"The server {current.name} already has this capacity and these levels.")
        before = {"capacity": current.capacity, "levels": current.levels}
        Server.objects.filter(pk=current.pk).update(**new)
        current.refresh_from_db()
        audit_record(
            actor=actor, action=AuditAction.SERVER_CHANGE, target_type="server", target_id=current.pk,
            request=request, summary=f"Changed database server {current.name}: capacity {current.capacity:,}, "
            f"takes {', '.join(current.levels)}",
            details={"name": current.name, "before": before,
                     "after": {"capacity": current.capacity, "levels": current.levels}},
        )  # fmt: skip
    return current


def pools_with_room() -> Any:
    """Pools that may take a tenant: room left, on an active server taking shared (a QuerySet)."""
    ids = shared_server_ids()
    where = Q(server_id__in=[i for i in ids if i is not None])
    if None in ids:
        where |= Q(server__isnull=True)
    return Placement.objects.filter(where, kind=Placement.Kind.POOL, tenant_count__lt=F("capacity"))
