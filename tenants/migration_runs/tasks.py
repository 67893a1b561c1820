"""Thin Celery tasks: ids in, one service call. acks_late so a killed worker's message can come back;
the claim in services.job_execute makes a second delivery harmless."""

from __future__ import annotations

from celery import shared_task

from tenants.migration_runs import services


@shared_task(name="migration_runs.job_run", acks_late=True, ignore_result=True)
def migration_job_run(job_id: int) -> str:
    return services.job_execute(job_id=job_id)


@shared_task(name="migration_runs.sweep", acks_late=True, ignore_result=True)
def migration_runs_sweep() -> dict[str, int]:
    return services.sweep()
