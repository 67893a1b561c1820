"""Indexes for pairs of viewer filters whose values are each common but rare together (issue 15):
a tenant's events of one type or aggregate type, an aggregate's events of one type. Built
CONCURRENTLY like 0003 (no write lock on the control-plane log), hence atomic = False. The viewer
asks the planner to cost random reads as on SSDs for such pairs (events/selectors.py), without which
it prefers walking the primary key (docs/events.md)."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("events", "0003_viewer_filter_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(fields=["tenant_id", "event_type", "event_id"], name="events_event_tenant_type"),
        ),
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(fields=["tenant_id", "aggregate_type", "event_id"], name="events_event_tenant_aggtype"),
        ),
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(fields=["aggregate_id", "event_type", "event_id"], name="events_event_aggid_type"),
        ),
    ]
