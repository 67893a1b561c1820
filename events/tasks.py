"""Celery tasks of the events app: thin, safe to run twice. (Rebuilds are jobs: events.services.ProjectionRebuildJob.)"""

from __future__ import annotations

from celery import shared_task

from events import services


@shared_task(name="events.projections_catch_up")
def projections_catch_up() -> int:
    return services.projections_catch_up_all()
