"""Every filter of the event viewer is index-backed (issue 15): aggregate type, aggregate id, time range
(ordered by (occurred_at, event_id)) and correlation id ordered by event_id.

The control-plane log can hold millions of rows, so the indexes are built CONCURRENTLY (no write lock
on events_event while they build); a concurrent build cannot run inside a transaction, hence
atomic = False. New indexes are built before the ones they replace are dropped, so the viewer is never
without an index. If a build is interrupted, PostgreSQL leaves an INVALID index behind; the
`IF NOT EXISTS`-free AddIndexConcurrently then fails loudly instead of keeping it — drop it and re-run.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("events", "0002_rebuilds_run_as_jobs"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(fields=["aggregate_type", "event_id"], name="events_event_aggtype"),
        ),
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(fields=["aggregate_id", "event_id"], name="events_event_aggid"),
        ),
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(fields=["occurred_at", "event_id"], name="events_event_time_id"),
        ),
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(
                condition=models.Q(("correlation_id__isnull", False)),
                fields=["correlation_id", "event_id"],
                name="events_event_corr_id",
            ),
        ),
        RemoveIndexConcurrently(model_name="event", name="events_event_time"),
        RemoveIndexConcurrently(model_name="event", name="events_event_correlation"),
    ]
