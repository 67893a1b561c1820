"""Scheduled starts of tenancy jobs (beat: servers-health, tenant-exports). Thin: the work is a job on
the engine, created by a service (safe twice)."""

from __future__ import annotations

from celery import shared_task

from tenants import server_health
from tenants.exports.services import tenant_export_schedule


@shared_task(name="tenants.servers_health", ignore_result=True)
def servers_health_scheduled() -> int:
    """Start a server health job unless one is open; returns its job id."""
    return server_health.servers_health_start().pk


@shared_task(name="tenants.exports_schedule", acks_late=True, ignore_result=True)
def exports_schedule_task() -> int:
    return len(tenant_export_schedule())
