"""Every filter of the event viewer is index-backed in a tenant's log too (issue 15): aggregate type,
aggregate id, and the time range ordered by (occurred_at, event_id), each after tenant_id (RLS).

Plain (transactional) index builds: this migration runs inside every placement through a migration
run, where a placement's migrations are all-or-nothing; a tenant log is one tenant's (or one pool's)
events, far smaller than the control-plane log, which is built CONCURRENTLY (events 0003).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenantlog", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="tenantevent",
            index=models.Index(fields=["tenant_id", "aggregate_type", "event_id"], name="tenantlog_event_aggtype"),
        ),
        migrations.AddIndex(
            model_name="tenantevent",
            index=models.Index(fields=["tenant_id", "aggregate_id", "event_id"], name="tenantlog_event_aggid"),
        ),
        migrations.AddIndex(
            model_name="tenantevent",
            index=models.Index(fields=["tenant_id", "occurred_at", "event_id"], name="tenantlog_event_time_id"),
        ),
        migrations.RemoveIndex(model_name="tenantevent", name="tenantlog_event_time"),
    ]
