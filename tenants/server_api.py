"""JSON API for the database servers, mounted under /api/servers/ by saas_admin/api.py.

Viewers list servers with their last health reading; Admins register (the server is connected to
first; a bad host or login is a 400 with one sentence and nothing saved), drain or re-activate, and
change a server's capacity and levels.
No `from __future__ import annotations`: ninja reads the annotations at runtime.
"""

from datetime import datetime

from ninja import Field, Router, Schema, Status

from core.api import require_api_role
from core.errors import NotFound
from core.permissions import Role
from tenants import servers
from tenants.models import Server
from tenants.servers import CAPACITY_MAX

router = Router(tags=["servers"])


class HealthOut(Schema):
    reachable: bool
    latency_ms: float | None
    backends: int | None
    max_connections: int | None
    placements: int
    error: str
    checked_at: datetime


class ServerOut(Schema):
    id: int
    name: str
    address: str
    data_database: str
    capacity: int
    levels: list[str]
    state: str
    is_default: bool
    placements: int
    health: HealthOut | None


class ServerIn(Schema):
    name: str = Field(max_length=40)
    host: str = Field(max_length=255)
    port: int = Field(5432, ge=1, le=65535)
    admin_user: str = Field("postgres", max_length=63)
    admin_password: str = Field("", max_length=200)
    capacity: int = Field(1000, ge=1, le=CAPACITY_MAX)
    takes_shared: bool = True
    takes_schema: bool = True
    takes_dedicated: bool = True


class ServerChangeIn(Schema):
    """Fields left out keep their current value."""

    capacity: int | None = Field(None, ge=1, le=CAPACITY_MAX)
    takes_shared: bool | None = None
    takes_schema: bool | None = None
    takes_dedicated: bool | None = None


class StateIn(Schema):
    state: str = Field(max_length=10)


def _out(server: Server) -> dict:
    return {
        "id": server.pk, "name": server.name, "address": server.address, "data_database": server.data_database,
        "capacity": server.capacity, "levels": server.levels, "state": server.state, "is_default": server.is_default,
        "placements": getattr(server, "placements_count", 0), "health": getattr(server, "health", None),
    }  # fmt: skip


def _get(server_id: int) -> Server:
    for server in servers.server_list():
        if server.pk == server_id:
            return server
    raise NotFound("There is no such database server.")


@router.get("/", response=list[ServerOut])
def list_servers(request):
    """Every registered server, with the placements on it and its last health reading."""
    require_api_role(request, Role.VIEWER)
    return [_out(s) for s in servers.server_list()]


@router.post("/", response={201: ServerOut}, summary="Register a database server (Admin)")
def register_server(request, payload: ServerIn):
    require_api_role(request, Role.ADMIN)
    server = servers.server_register(**payload.dict(), actor=request.user, request=request)
    return Status(201, _out(_get(server.pk)))


@router.post("/{server_id}/state", response=ServerOut, summary="Drain or re-activate a server (Admin)")
def set_server_state(request, server_id: int, payload: StateIn):
    require_api_role(request, Role.ADMIN)
    server = servers.server_set_state(server=_get(server_id), state=payload.state, actor=request.user,
                                      request=request)  # fmt: skip
    return _out(_get(server.pk))


@router.patch("/{server_id}", response=ServerOut, summary="Change a server's capacity or levels (Admin)")
def change_server(request, server_id: int, payload: ServerChangeIn):
    """Placements already on the server stay; a capacity under what it holds means no new placements."""
    require_api_role(request, Role.ADMIN)
    servers.server_change(server=_get(server_id), **payload.dict(), actor=request.user, request=request)
    return _out(_get(server_id))
