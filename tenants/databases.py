"""Connection aliases for dedicated tenant databases, registered at runtime from Placement rows.

A dedicated placement gets two aliases: `<alias>` (app role: DML under RLS)
and `<alias>__owner` (owner role: migrations/DDL). Their settings are copied
from the control-plane aliases with the placement's database, server and
decrypted credentials; nothing secret is logged or stored in plain text.

Connection budget (issue 15): each process keeps at most TENANCY_SERVER_CONNECTION_BUDGET app-role
connections per database server for dedicated databases. An alias's pool holds up to
TENANCY_DEDICATED_POOL_MAX connections and closes those idle for TENANCY_DEDICATED_IDLE_SECONDS, so
a server holds at most budget ÷ pool size registered aliases; registering one more closes the
least-recently-used alias that no tenant context of this process is using (it is registered again,
from its placement row, the next time a tenant context needs it). Aliases in use are never closed:
while more of them than the budget allows are in use at once, the process is over budget until they
are released. Owner aliases (migrations, DDL) hold no pool and are closed with their app alias.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connections

from tenants.crypto import decrypt_json

_lock = threading.RLock()
# Per database server (host, port): the registered dedicated app aliases, least recently used first.
_recent: dict[tuple[str, str], OrderedDict[str, None]] = {}
_in_use: Counter[str] = Counter()


def alias_registered(alias: str) -> bool:
    return alias in connections.settings


def _settings_for(base_alias: str, placement: Any, *, user: str, password: str, pool: bool) -> dict[str, Any]:
    config = copy.deepcopy(connections.settings[base_alias])
    config.update(NAME=placement.db_name, USER=user, PASSWORD=password)
    if placement.db_host:
        config["HOST"] = placement.db_host
    if placement.db_port:
        config["PORT"] = placement.db_port
    options = dict(config.get("OPTIONS") or {})
    options.pop("pool", None)
    if pool:
        options["pool"] = {
            "min_size": 0,
            "max_size": settings.TENANCY_DEDICATED_POOL_MAX,
            "max_idle": settings.TENANCY_DEDICATED_IDLE_SECONDS,
            "timeout": 10,
        }
    config["OPTIONS"] = options
    config["TEST"] = {**config.get("TEST", {}), "NAME": placement.db_name}
    return config


def register_placement(placement: Any) -> str:
    """Make the placement's aliases usable in this process; returns the app-role alias."""
    alias = placement.database_alias
    if alias == "default":
        return alias
    with _lock:
        if not (alias_registered(alias) and alias_registered(f"{alias}__owner")):
            creds = decrypt_json(placement.credentials_encrypted)
            app_pool = bool(connections.settings["default"].get("OPTIONS", {}).get("pool"))
            connections.settings[alias] = _settings_for(
                "default", placement, user=creds["app_user"], password=creds.get("app_password", ""), pool=app_pool
            )
            connections.settings[f"{alias}__owner"] = _settings_for(
                "owner", placement, user=creds["owner_user"], password=creds.get("owner_password", ""), pool=False
            )
            for name in (alias, f"{alias}__owner"):
                settings.DATABASES[name] = connections.settings[name]
        _touch(alias)
    return alias


def _server(alias: str) -> tuple[str, str]:
    config = connections.settings[alias]
    return str(config.get("HOST") or ""), str(config.get("PORT") or "")


def aliases_per_server() -> int:
    """How many dedicated app aliases one process keeps open per server (the budget ÷ pool size)."""
    return max(1, settings.TENANCY_SERVER_CONNECTION_BUDGET // max(1, settings.TENANCY_DEDICATED_POOL_MAX))


def _touch(alias: str) -> None:
    """Mark `alias` most recently used on its server; close the least recently used idle ones beyond
    the budget. Called with _lock held."""
    recent = _recent.setdefault(_server(alias), OrderedDict())
    recent[alias] = None
    recent.move_to_end(alias)
    excess = len(recent) - aliases_per_server()
    for old in [a for a in recent if a != alias and not _in_use[a]][: max(0, excess)]:
        _unregister(old)


def registered_dedicated_aliases() -> dict[tuple[str, str], list[str]]:
    """Per server, this process's registered dedicated app aliases, least recently used first."""
    with _lock:
        return {server: list(recent) for server, recent in _recent.items() if recent}


@contextmanager
def alias_in_use(alias: str) -> Iterator[None]:
    """While a tenant context uses `alias`, the budget never closes it."""
    with _lock:
        _in_use[alias] += 1
    try:
        yield
    finally:
        with _lock:
            _in_use[alias] -= 1
            if not _in_use[alias]:
                del _in_use[alias]


DATA_ALIAS = "data"
# Tests that run inside one transaction point tenant-host requests at `default` so they see the
# test's own rows (tests/support/tenancy.py); nothing else sets it.
data_alias_override: str | None = None


def data_plane_alias(placement: Any) -> str:
    """The alias requests on a tenant's host use: the data-plane role for placements in the
    control-plane database (registered at first use), the dedicated database's own app role
    (which has nothing but the data plane) for dedicated ones."""
    if placement.database_alias != "default":
        return register_placement(placement)
    return control_data_alias()


def control_data_alias() -> str:
    """The data-plane role's alias on the control-plane database (registered at first use)."""
    if data_alias_override:
        return data_alias_override
    if not alias_registered(DATA_ALIAS):
        with _lock:
            if not alias_registered(DATA_ALIAS):
                config = copy.deepcopy(connections.settings["default"])  # normalised, the test database too
                config.update(
                    USER=settings.DATA_PLANE_DATABASE["USER"], PASSWORD=settings.DATA_PLANE_DATABASE["PASSWORD"]
                )
                connections.settings[DATA_ALIAS] = config
                settings.DATABASES[DATA_ALIAS] = config
    return DATA_ALIAS


def unregister_alias(alias: str) -> None:
    """Close and forget both aliases of a dedicated placement (before dropping its database)."""
    if alias in ("default", "owner"):
        return
    with _lock:
        _unregister(alias)


def _unregister(alias: str) -> None:
    """Called with _lock held."""
    for recent in _recent.values():
        recent.pop(alias, None)
    for name in (alias, f"{alias}__owner"):
        if name not in connections.settings:
            continue
        conn = connections[name]
        conn.close()
        if conn.settings_dict.get("OPTIONS", {}).get("pool"):
            conn.close_pool()  # type: ignore[attr-defined]  # the PostgreSQL backend's pool
        del connections[name]
        connections.settings.pop(name, None)
        settings.DATABASES.pop(name, None)
