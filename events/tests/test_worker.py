"""Projection rebuild through a real Celery worker and a private broker."""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import transaction

from events import services
from events.models import EventTypeStat, ProjectionRebuild
from tests.support.sagas import CeleryHarness

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def celery_harness(django_db_setup, django_db_blocker):
    harness = CeleryHarness().start()
    yield harness
    harness.stop()


def test_a_rebuild_requested_by_an_operator_runs_on_the_worker_and_reports_progress(celery_harness, operator):
    kind = f"worker.{uuid.uuid4().hex[:8]}"
    for n in range(25):
        services.control_event_append(
            aggregate_type=kind, aggregate_id=f"a{n % 3}", event_type=f"t{n % 2}", data={"n": n}
        )
    with transaction.atomic():
        rebuild = services.projection_rebuild_start(projection="control.event_type_stats", actor=operator)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        celery_harness.ensure_worker()
        rebuild.refresh_from_db()
        if rebuild.status in (ProjectionRebuild.Status.COMPLETED, ProjectionRebuild.Status.FAILED):
            break
        time.sleep(0.2)
    assert rebuild.status == ProjectionRebuild.Status.COMPLETED, rebuild.error
    assert rebuild.percent == 100
    counts = {(s.event_type, s.count) for s in EventTypeStat.objects.filter(aggregate_type=kind)}
    # A transaction left open elsewhere on a shared server can hold the feed back (see docs/events.md);
    # the rebuild then completes with what was safe to read, and a later catch-up adds the rest.
    if counts != {("t0", 13), ("t1", 12)}:
        from events import projections

        deadline = time.monotonic() + 90  # a busy shared server can hold the feed back for a while
        while counts != {("t0", 13), ("t1", 12)} and time.monotonic() < deadline:
            projections.catch_up("control.event_type_stats")
            counts = {(s.event_type, s.count) for s in EventTypeStat.objects.filter(aggregate_type=kind)}
            time.sleep(0.2)
    else:
        assert rebuild.processed >= 25  # nothing held the feed back: the rebuild read every event
    assert counts == {("t0", 13), ("t1", 12)}
