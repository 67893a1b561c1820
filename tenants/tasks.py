"""Scheduled starts of tenancy jobs (beat: servers-health). Thin: the work is a job on the engine."""

from __future__ import annotations

from celery import shared_task

from tenants import servers


@shared_task(name="tenants.servers_health", ignore_result=True)
def servers_health_scheduled() -> int:
    """Start a server health job unless one is open; returns its job id."""
    return servers.servers_health_start().pk
