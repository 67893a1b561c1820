"""Projection rebuilds run on the job engine: status, progress and error move to jobs.Job (history kept)."""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone

STATE = {"pending": "pending", "running": "pending", "completed": "succeeded", "failed": "failed"}


def forwards(apps, schema_editor):
    db = schema_editor.connection.alias  # the owner alias that migrates; the default alias is the app role
    ProjectionRebuild = apps.get_model("events", "ProjectionRebuild")
    Job = apps.get_model("jobs", "Job")
    for rebuild in ProjectionRebuild.objects.using(db).all().iterator():
        state = STATE.get(rebuild.status, "failed")
        rebuild.job = Job.objects.using(db).create(
            kind="events.projection_rebuild",
            state=state,  # a rebuild that was running is started over (rebuilds always may be)
            payload={"rebuild_id": rebuild.pk, "batch_size": 1000},
            attempts=1 if state != "pending" else 0,
            max_attempts=3,
            progress_done=rebuild.processed,
            progress_total=rebuild.total,
            error=rebuild.error,
            started_at=rebuild.started_at,
            finished_at=rebuild.finished_at if state != "pending" else None,
            requested_by_label=rebuild.requested_by,
            created_at=rebuild.created_at,
            updated_at=timezone.now(),
        )
        rebuild.save(using=db, update_fields=["job"])


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        ("jobs", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="projectionrebuild",
            name="job",
            field=models.OneToOneField(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="projection_rebuild",
                to="jobs.job",
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.RemoveField(model_name="projectionrebuild", name="error"),
        migrations.RemoveField(model_name="projectionrebuild", name="finished_at"),
        migrations.RemoveField(model_name="projectionrebuild", name="processed"),
        migrations.RemoveField(model_name="projectionrebuild", name="started_at"),
        migrations.RemoveField(model_name="projectionrebuild", name="status"),
        migrations.RemoveField(model_name="projectionrebuild", name="total"),
    ]
