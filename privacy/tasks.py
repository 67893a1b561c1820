"""Beat's entry point for retention: thin, creates the day's purge jobs (safe to run twice)."""

from __future__ import annotations

from celery import shared_task

from privacy.intake import intake_sweep
from privacy.retention import retention_schedule


@shared_task(name="privacy.retention_schedule", acks_late=True, ignore_result=True)
def retention_schedule_task() -> int:
    return len(retention_schedule())


@shared_task(name="privacy.intake_sweep", acks_late=True, ignore_result=True)
def intake_sweep_task() -> dict:
    return intake_sweep()
