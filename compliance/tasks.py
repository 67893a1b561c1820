"""The compliance schedule (beat: compliance-evaluate-due). Thin: the service decides what is due."""

from __future__ import annotations

from celery import shared_task

from compliance import services


@shared_task(name="compliance.evaluate_due", ignore_result=True)
def evaluate_due() -> int | None:
    """Start an evaluation of the controls that are due; returns its job id (None: nothing due)."""
    job = services.evaluate_due()
    return job.pk if job is not None else None
