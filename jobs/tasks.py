"""The engine's two Celery tasks: run one job (by id), and sweep. Thin; safe to deliver twice."""

from __future__ import annotations

from celery import shared_task

from jobs import services


@shared_task(name="jobs.run", acks_late=True, ignore_result=True)
def job_run(job_id: int) -> str:
    return services.job_execute(job_id=job_id)


@shared_task(name="jobs.sweep", acks_late=True, ignore_result=True)
def job_sweep() -> dict[str, int]:
    return services.job_sweep()
