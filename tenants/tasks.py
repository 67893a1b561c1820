"""Beat's entry points of the tenants app: thin, each creates jobs through a service (safe twice)."""

from __future__ import annotations

from celery import shared_task

from tenants.exports.services import tenant_export_schedule


@shared_task(name="tenants.exports_schedule", acks_late=True, ignore_result=True)
def exports_schedule_task() -> int:
    return len(tenant_export_schedule())
