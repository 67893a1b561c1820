"""Celery tasks of the events app: thin, take ids, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from events import services


@shared_task(name="events.projection_rebuild", acks_late=True)
def projection_rebuild(rebuild_id: int) -> None:
    services.projection_rebuild_run(rebuild_id=rebuild_id)


@shared_task(name="events.projections_catch_up")
def projections_catch_up() -> int:
    return services.projections_catch_up_all()
