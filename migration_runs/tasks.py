"""The scheduled verification of recorded migration state (beat: migration-state-verify). Thin."""

from __future__ import annotations

from celery import shared_task

from migration_runs import verification


@shared_task(name="migration_runs.verify", ignore_result=True)
def verify_scheduled() -> int:
    """Start a verification job unless one is open; returns its job id."""
    return verification.verification_start(actor=verification.SCHEDULE).pk
