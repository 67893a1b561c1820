"""A run's targets keep their own outcome; one engine job may carry several placements (history kept)."""

import django.db.models.deletion
from django.db import migrations, models


def forwards(apps, schema_editor):
    schema_editor.execute(
        "UPDATE migration_runs_migrationjob m SET state = CASE WHEN j.state = 'queued' THEN 'pending' "
        "ELSE j.state END, error = j.error, started_at = j.started_at, finished_at = j.finished_at, "
        "duration_ms = j.duration_ms FROM jobs_job j WHERE j.id = m.job_id"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_initial"),
        ("migration_runs", "0002_jobs_run_on_the_engine"),
    ]

    operations = [
        migrations.AddField(
            model_name="migrationjob",
            name="duration_ms",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="migrationjob",
            name="error",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="migrationjob",
            name="finished_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="migrationjob",
            name="started_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="migrationjob",
            name="state",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("queued", "Queued"),
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("failed", "Failed"),
                    ("skipped", "Nothing to apply"),
                    ("cancelled", "Cancelled"),
                ],
                db_index=True,
                default="pending",
                max_length=10,
            ),
        ),
        migrations.AlterField(
            model_name="migrationjob",
            name="job",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="migration_jobs",
                to="jobs.job",
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
