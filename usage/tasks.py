"""Celery tasks of the usage app: thin, safe to run twice (the work itself is the `usage.collect` job)."""

from __future__ import annotations

from celery import shared_task

from usage import jobs


@shared_task(name="usage.collect", ignore_result=True)
def collect_scheduled() -> int:
    """Start a collection job unless one is open; returns its job id."""
    return jobs.collection_start(actor=jobs.SCHEDULE).pk
