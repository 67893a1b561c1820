"""Saga steps run on the job engine: attempts, leases and retries move from SagaStep to jobs.Job.

Existing rows keep their history: every step that was attempted gets a finished (or, for a saga
still in flight, a pending) job with its attempt counts, so the monitor shows the same numbers
and the engine's sweeper resumes in-flight sagas where they were.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone

ACTIVE = ("started", "running", "compensating")


def _job(db, Job, saga, step, kind, *, state, attempts, max_attempts, error="", lease=None, run_after=None):
    now = timezone.now()
    return Job.objects.using(db).create(
        kind=kind,
        state=state,
        group_type="saga",
        group_id=str(saga.id),
        payload={"saga_id": str(saga.id), "step_id": step.pk, "step": step.name},
        attempts=attempts,
        max_attempts=max(max_attempts, attempts, 1),
        error=error,
        lease_expires_at=lease,
        run_after=run_after,
        started_at=step.started_at,
        finished_at=None if state in ("pending", "queued", "running") else (step.finished_at or step.compensated_at or now),
        correlation_id=saga.correlation_id,
        created_at=step.started_at or saga.created_at,
        updated_at=now,
    )


def forwards(apps, schema_editor):
    db = schema_editor.connection.alias  # the owner alias that migrates; the default alias is the app role
    Saga = apps.get_model("sagas", "Saga")
    SagaStep = apps.get_model("sagas", "SagaStep")
    Job = apps.get_model("jobs", "Job")
    for step in SagaStep.objects.using(db).select_related("saga").order_by("saga_id", "index").iterator():
        saga = step.saga
        active = saga.state in ACTIVE
        if step.attempts or (active and saga.state != "compensating" and step.state == "pending"):
            if step.state in ("completed", "compensating", "compensated") or (
                step.state == "failed" and step.compensate_attempts
            ):
                state = "succeeded" if step.state != "failed" else "failed"
            elif step.state == "running":
                state = "running" if active else "failed"
            elif step.state == "failed":
                state = "failed"
            else:  # pending: waiting for a retry (or never tried) in a live saga, abandoned otherwise
                state = "pending" if active and saga.state != "compensating" else "cancelled"
            if step.state == "pending" and step.attempts == 0 and state == "pending":
                previous = SagaStep.objects.using(db).filter(saga=saga, index__lt=step.index).exclude(state="completed")
                if previous.exists():
                    continue  # only the saga's current step has a job
            step.job = _job(
                db, Job, saga, step, "saga.step", state=state, attempts=step.attempts, max_attempts=step.max_attempts,
                error=step.error, lease=step.lease_expires_at if state == "running" else None,
                run_after=step.next_attempt_at if state == "pending" else None,
            )  # fmt: skip
        if step.compensate_attempts:
            if step.state == "compensated":
                state = "succeeded"
            elif step.state == "compensating":
                state = "running" if active else "failed"
            else:
                state = "pending" if saga.state == "compensating" else "failed"
            step.compensation_job = _job(
                db, Job, saga, step, "saga.compensate", state=state, attempts=step.compensate_attempts,
                max_attempts=5, error=step.compensation_error,
                lease=step.lease_expires_at if state == "running" else None,
                run_after=step.next_attempt_at if state == "pending" else None,
            )  # fmt: skip
        step.save(using=db, update_fields=["job", "compensation_job"])
    # A compensating saga with nothing scheduled yet: the sweeper's dispatch picks up the newest step to undo
    # only if it has a pending compensation job, so give it one.
    for saga in Saga.objects.using(db).filter(state="compensating"):
        steps = SagaStep.objects.using(db).filter(saga=saga)
        if steps.filter(compensation_job__state__in=["pending", "queued", "running"]).exists():
            continue
        target = steps.filter(state__in=["completed", "failed", "running", "compensating"]).order_by("-index").first()
        if target is not None:
            target.compensation_job = _job(db, Job, saga, target, "saga.compensate", state="pending", attempts=0,
                                           max_attempts=5)  # fmt: skip
            target.save(using=db, update_fields=["compensation_job"])


class Migration(migrations.Migration):
    dependencies = [
        ("sagas", "0001_initial"),
        ("jobs", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="sagastep",
            name="job",
            field=models.OneToOneField(
                blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="saga_step", to="jobs.job"
            ),
        ),
        migrations.AddField(
            model_name="sagastep",
            name="compensation_job",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="compensated_saga_step",
                to="jobs.job",
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="sagastep", name="sagas_sagas_state_caa40c_idx"),
        migrations.RemoveField(model_name="sagastep", name="attempts"),
        migrations.RemoveField(model_name="sagastep", name="max_attempts"),
        migrations.RemoveField(model_name="sagastep", name="compensate_attempts"),
        migrations.RemoveField(model_name="sagastep", name="next_attempt_at"),
        migrations.RemoveField(model_name="sagastep", name="lease_expires_at"),
    ]
