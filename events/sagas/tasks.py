"""Thin Celery tasks: ids in, one service call. acks_late so a killed worker's message can come back."""

from __future__ import annotations

from celery import shared_task

from events.sagas import services


@shared_task(name="sagas.step_run", acks_late=True, ignore_result=True)
def saga_step_run(step_id: int) -> str:
    return services.saga_step_execute(step_id=step_id)


@shared_task(name="sagas.compensate", acks_late=True, ignore_result=True)
def saga_compensate(saga_id: str) -> str:
    return services.saga_compensate_next(saga_id=saga_id)


@shared_task(name="sagas.sweep", acks_late=True, ignore_result=True)
def saga_sweep() -> dict[str, int]:
    return services.saga_sweep()
