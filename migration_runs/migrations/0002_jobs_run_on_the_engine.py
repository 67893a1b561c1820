"""Migration jobs run on the job engine: state, attempts, lease and timings move to jobs.Job (history kept)."""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone


def forwards(apps, schema_editor):
    db = schema_editor.connection.alias  # the owner alias that migrates; the default alias is the app role
    MigrationJob = apps.get_model("migration_runs", "MigrationJob")
    Job = apps.get_model("jobs", "Job")
    for mjob in MigrationJob.objects.using(db).select_related("run").order_by("id").iterator():
        run = mjob.run
        mjob.job = Job.objects.using(db).create(
            kind="migration_runs.apply",
            state=mjob.status,  # the same seven states
            group_type="migration_run",
            group_id=str(run.pk),
            batch=mjob.batch,
            concurrency_key=mjob.server,
            held=run.status == "awaiting_approval",
            payload={"target": mjob.target},
            result={"applied": mjob.applied} if mjob.applied else {},
            attempts=mjob.attempts,
            max_attempts=max(3, mjob.attempts),
            queued_at=mjob.queued_at,
            started_at=mjob.started_at,
            finished_at=mjob.finished_at,
            lease_expires_at=mjob.lease_expires_at,
            worker=mjob.worker,
            duration_ms=mjob.duration_ms,
            error=mjob.error,
            correlation_id=run.pk,
            requested_by_label=run.created_by_label,
            created_at=run.created_at,
            updated_at=timezone.now(),
        )
        mjob.save(using=db, update_fields=["job"])


class Migration(migrations.Migration):
    dependencies = [
        ("migration_runs", "0001_initial"),
        ("jobs", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="migrationjob",
            name="job",
            field=models.OneToOneField(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="migration_job", to="jobs.job"
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="migrationjob",
            name="job",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.PROTECT, related_name="migration_job", to="jobs.job"
            ),
        ),
        migrations.RemoveIndex(model_name="migrationjob", name="migration_job_run_status"),
        migrations.RemoveIndex(model_name="migrationjob", name="migration_job_status_server"),
        migrations.RemoveField(model_name="migrationjob", name="status"),
        migrations.RemoveField(model_name="migrationjob", name="attempts"),
        migrations.RemoveField(model_name="migrationjob", name="worker"),
        migrations.RemoveField(model_name="migrationjob", name="lease_expires_at"),
        migrations.RemoveField(model_name="migrationjob", name="queued_at"),
        migrations.RemoveField(model_name="migrationjob", name="started_at"),
        migrations.RemoveField(model_name="migrationjob", name="finished_at"),
        migrations.RemoveField(model_name="migrationjob", name="duration_ms"),
        migrations.RemoveField(model_name="migrationjob", name="error"),
    ]
