"""Health of the database servers (`servers.health`, a job on the job engine, started by beat every
TENANCY_SERVER_HEALTH_INTERVAL_SECONDS): each server's reachability, connect latency, backends in use
against max_connections and placements count, written to ServerStatus. The overview's Database
servers tile and the Servers screen read those rows; no page view probes a server.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from django.db import connections
from django.utils import timezone

from core import dbroles
from core.actors import Actor, SystemActor
from jobs.models import Job
from jobs.registry import JobContext, JobHandler, register
from jobs.services import job_create
from tenants import placements
from tenants.models import Server, ServerStatus
from tenants.servers import server_list, server_target

HEALTH = "servers.health"
SCHEDULE = SystemActor("server health schedule")


def _measure(server: Server) -> dict[str, Any]:
    if server.is_default:
        info = dbroles.conninfo(connections.settings["owner"])
        info["dbname"] = placements.control_plane_db()
    else:
        info = dbroles.conninfo(placements.owner_settings(server_target(server)))
    started = time.monotonic()
    try:
        with psycopg.connect(**info, autocommit=True, connect_timeout=5) as conn:
            latency = (time.monotonic() - started) * 1000
            backends, maximum = conn.execute(
                "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), "
                "current_setting('max_connections')::int"
            ).fetchone() or (None, None)
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or ["no answer"])[0]
        return {"reachable": False, "latency_ms": None, "backends": None, "max_connections": None,
                "error": first[:300]}  # fmt: skip
    return {"reachable": True, "latency_ms": round(latency, 2), "backends": backends, "max_connections": maximum,
            "error": ""}  # fmt: skip


def servers_health_check() -> dict[str, Any]:
    """Probe every server once and write its ServerStatus row; returns {name: reachable}."""
    found: dict[str, Any] = {}
    for server in server_list():  # each with its placements_count
        measured = _measure(server)
        held = getattr(server, "placements_count", 0)
        ServerStatus.objects.update_or_create(
            server=server, defaults={**measured, "placements": held, "checked_at": timezone.now()}
        )
        found[server.name] = measured["reachable"]
    return found


@register
class ServersHealth(JobHandler):
    kind = HEALTH
    title = "Check the database servers"
    max_attempts = 1  # the next schedule is the retry

    def run(self, ctx: JobContext) -> dict[str, Any]:
        return {"servers": servers_health_check()}


def servers_health_start(*, actor: Actor = SCHEDULE) -> Job:
    """Start a health job unless one is already waiting or running (the schedule never piles them up)."""
    open_job = Job.objects.filter(kind=HEALTH, state__in=Job.OPEN).first()
    if open_job is not None:
        return open_job
    return job_create(kind=HEALTH, payload={}, actor=actor)
