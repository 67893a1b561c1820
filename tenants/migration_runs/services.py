"""Cross-tenant migration runs: start, approve, fan out, execute one job, sweep, cancel.

Flow (docs/migrations.md):
- `run_start` reads every target's status in bulk (plans.status), creates the
  run and one job per target; targets with nothing to apply are `skipped`
  right away and never open a migration executor.
- `run_dispatch` queues pending jobs of the current batch (canary first) while
  the database server has fewer than MIGRATIONS_MAX_PER_SERVER jobs queued or
  running, one Celery message per job, sent on commit. Each finished job calls
  it again, so the cap holds without any task spinning.
- `job_execute` claims its job with a conditional UPDATE (queued → running,
  attempts + 1, a lease), migrates that one target, and records the outcome
  only if it still holds the claim. A heartbeat thread renews the lease; the
  sweeper puts jobs whose lease ran out (killed worker) back to pending.
- A failing job never blocks the others; the run ends `completed_with_errors`.
  A re-run (`run_resume`) is a new run over the failed/pending/cancelled
  targets of the old one, planned afresh.
Every run, job and outcome is appended to the control-plane event log; every
operator action is also in the audit trail.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.db import close_old_connections, connection, transaction
from django.db.models import Count, Max
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import SystemActor
from core.permissions import Role, check_role
from tenants import placements
from tenants.migration_runs import executor, plans
from tenants.migration_runs.models import MigrationJob, MigrationRun
from tenants.models import Placement

logger = logging.getLogger(__name__)
Job = MigrationJob.Status
Run = MigrationRun.Status
_DISPATCH_LOCK_KEY = 0x7E4A60
# Table names for the few hot statements written in SQL (claim, hand-off); never user input.
JOBS = MigrationJob._meta.db_table
RUNS = MigrationRun._meta.db_table


CLI = SystemActor("manage.py migrate_tenants")


class MigrationRunError(Exception):
    """Bad input or a state that forbids the action; the message is one sentence for the operator."""


# --- evidence -----------------------------------------------------------------------------


def _event(*, aggregate_type: str, aggregate_id: Any, event_type: str, data: dict, correlation_id: Any = None) -> None:
    """Append to the control-plane event log (change-management evidence), in the caller's transaction."""
    from events.services import control_event_append

    control_event_append(
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        event_type=event_type,
        data=data,
        correlation_id=correlation_id,
        expected_version=None,
    )


def _run_event(run: MigrationRun, event_type: str, data: dict) -> None:
    _event(aggregate_type="migration_run", aggregate_id=run.pk, event_type=event_type, data=data, correlation_id=run.pk)


def _job_event(job: MigrationJob, event_type: str, data: dict) -> None:
    base = {"run_id": str(job.run_id), "run_number": job.run.number, "target": job.target, "label": job.label}
    _event(
        aggregate_type="migration_job",
        aggregate_id=f"{job.run_id}:{job.target}",
        event_type=event_type,
        data={**base, **data},
        correlation_id=job.run_id,
    )


def _audit(*, actor: Any, action: str, run: MigrationRun, summary: str, request: HttpRequest | None, details=None):

    audit_record(
        actor=actor,
        action=action,
        target_type="migration_run",
        target_id=run.pk,
        summary=summary,
        request=request,
        details=details or {},
    )


def _actor_label(actor: Any) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return str(actor) if actor else "system"


def _user_or_none(actor: Any) -> Any:
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


# --- starting a run ---------------------------------------------------------------------------


def _check_admin(actor: Any) -> None:
    """Operators need the Admin role; `actor=None` is the shell (manage.py), which already has the database."""
    if actor is not None:
        check_role(actor, Role.ADMIN)


def _next_number() -> int:
    return (MigrationRun.objects.aggregate(n=Max("number"))["n"] or 0) + 1


def _validate_keys(keys: list[str]) -> list[plans.Target]:
    if not keys:
        raise MigrationRunError("Choose at least one placement.")
    found = plans.targets(keys=keys)
    unknown = sorted(set(keys) - {t.key for t in found})
    if unknown:
        raise MigrationRunError(f"Unknown placement: {unknown[0]}.")
    return found


def run_start(
    *,
    actor: Any,
    target_keys: list[str] | None = None,
    canary_size: int = 0,
    resumed_from: MigrationRun | None = None,
    via: str = "web",
    note: str = "",
    request: HttpRequest | None = None,
) -> MigrationRun:
    """Plan and start (or, with four-eyes on, propose) a run over all targets or the chosen ones."""
    _check_admin(actor)
    if canary_size < 0:
        raise MigrationRunError("The canary batch size cannot be negative.")
    found = plans.targets() if target_keys is None else _validate_keys(target_keys)
    statuses = plans.status(found)
    summary: dict[str, int] = {}
    for st in statuses:
        for key in st.pending:
            summary[plans.fmt(key)] = summary.get(plans.fmt(key), 0) + 1
    now = timezone.now()
    needs_approval = bool(settings.MIGRATIONS_REQUIRE_APPROVAL) and actor is not None
    scope = (
        MigrationRun.Scope.RESUME
        if resumed_from
        else (MigrationRun.Scope.ALL if target_keys is None else MigrationRun.Scope.SELECTED)
    )
    with transaction.atomic():
        connection.cursor().execute("SELECT pg_advisory_xact_lock(%s)", [_DISPATCH_LOCK_KEY + 1])
        run = MigrationRun.objects.create(
            number=_next_number(),
            status=Run.AWAITING_APPROVAL if needs_approval else Run.RUNNING,
            scope=scope,
            canary_size=canary_size,
            resumed_from=resumed_from,
            created_by=_user_or_none(actor),
            created_by_label=_actor_label(actor) if actor is not None else CLI.label,
            via=via,
            plan_summary=summary,
            note=note[:300],
            started_at=None if needs_approval else now,
        )
        canary_left = canary_size
        jobs = []
        for st in statuses:
            t = st.target
            has_work = bool(st.pending)
            batch = 1
            if canary_size and has_work and (t.kind == "control" or (t.placement_id and canary_left > 0)):
                batch = 0
                if t.placement_id:
                    canary_left -= 1
            jobs.append(
                MigrationJob(
                    run=run,
                    target=t.key,
                    kind=t.kind,
                    placement_id=t.placement_id,
                    label=t.label,
                    server=t.server,
                    batch=batch,
                    plan=[plans.fmt(k) for k in st.pending],
                    status=Job.PENDING if has_work else Job.SKIPPED,
                    finished_at=None if has_work else now,
                    error=st.error,
                )
            )
        MigrationJob.objects.bulk_create(jobs, batch_size=1000)
        work = sum(1 for j in jobs if j.status == Job.PENDING)
        data = {
            "number": run.number,
            "triggered_by": run.created_by_label,
            "via": via,
            "scope": scope,
            "targets": len(jobs),
            "with_work": work,
            "skipped_nothing_to_apply": len(jobs) - work,
            "canary_size": canary_size,
            "plan": summary,
            "resumed_from": str(resumed_from.pk) if resumed_from else None,
            "approval_required": needs_approval,
        }
        _run_event(run, "MigrationRunRequested", data)
        _audit(
            actor=actor if actor is not None else CLI,
            action=AuditAction.MIGRATION_RUN_START if not needs_approval else AuditAction.MIGRATION_RUN_PROPOSE,
            run=run,
            summary=f"Run #{run.number}: {work} of {len(jobs)} placements have migrations to apply",
            request=request,
            details=data,
        )
        if not needs_approval:
            _run_event(run, "MigrationRunStarted", {"number": run.number, "approved_by": None})
            _after_commit(lambda: run_dispatch(run_id=run.pk))
    return run


def run_resume(*, actor: Any, run: MigrationRun, via: str = "web", request: HttpRequest | None = None) -> MigrationRun:
    """A new run over the targets the old one did not finish (failed, pending, cancelled), planned afresh."""
    _check_admin(actor)
    if not run.is_finished:
        raise MigrationRunError("This run is still going; cancel it or wait for it to finish before re-running.")
    keys = list(
        run.jobs.filter(status__in=[Job.FAILED, Job.PENDING, Job.CANCELLED, Job.QUEUED, Job.RUNNING]).values_list(
            "target", flat=True
        )
    )
    keys = [k for k in keys if not k.startswith("placement:") or Placement.objects.filter(pk=k[10:]).exists()]
    if not keys:
        raise MigrationRunError("Nothing to resume: every placement of this run succeeded or had nothing to apply.")
    return run_start(actor=actor, target_keys=keys, resumed_from=run, via=via, request=request)


def run_approve(*, actor: Any, run: MigrationRun, request: HttpRequest | None = None) -> MigrationRun:
    """Four-eyes: a second Admin lets a proposed run fan out."""
    check_role(actor, Role.ADMIN)
    if run.created_by_id == actor.pk:
        raise MigrationRunError("A run needs a second Admin's approval; you proposed this one.")
    with transaction.atomic():
        updated = MigrationRun.objects.filter(pk=run.pk, status=Run.AWAITING_APPROVAL).update(
            status=Run.RUNNING, approved_by=actor, approved_at=timezone.now(), started_at=timezone.now()
        )
        if not updated:
            raise MigrationRunError("This run is not awaiting approval.")
        run.refresh_from_db()
        _run_event(run, "MigrationRunApproved", {"number": run.number, "approved_by": actor.get_username()})
        _run_event(run, "MigrationRunStarted", {"number": run.number, "approved_by": actor.get_username()})
        _audit(
            actor=actor, action=AuditAction.MIGRATION_RUN_APPROVE, run=run, summary=f"Approved run #{run.number}", request=request
        )
        _after_commit(lambda: run_dispatch(run_id=run.pk))
    return run


def run_reject(*, actor: Any, run: MigrationRun, request: HttpRequest | None = None) -> MigrationRun:
    check_role(actor, Role.ADMIN)
    with transaction.atomic():
        now = timezone.now()
        updated = MigrationRun.objects.filter(pk=run.pk, status=Run.AWAITING_APPROVAL).update(
            status=Run.REJECTED, finished_at=now
        )
        if not updated:
            raise MigrationRunError("This run is not awaiting approval.")
        run.jobs.filter(status=Job.PENDING).update(status=Job.CANCELLED, finished_at=now)
        run.refresh_from_db()
        _run_event(run, "MigrationRunRejected", {"number": run.number, "rejected_by": actor.get_username()})
        _audit(
            actor=actor, action=AuditAction.MIGRATION_RUN_REJECT, run=run, summary=f"Rejected run #{run.number}", request=request
        )
    return run


def run_cancel(*, actor: Any, run: MigrationRun, request: HttpRequest | None = None) -> MigrationRun:
    """Stop new jobs; running ones finish. The run ends `cancelled` once nothing is running."""
    _check_admin(actor)
    with transaction.atomic():
        updated = MigrationRun.objects.filter(
            pk=run.pk, status__in=[Run.RUNNING, Run.AWAITING_APPROVAL], cancel_requested=False
        ).update(cancel_requested=True, cancelled_by_label=_actor_label(actor) if actor else "manage.py")
        if not updated:
            raise MigrationRunError("This run has already finished or is being cancelled.")
        cancelled = run.jobs.filter(status__in=[Job.PENDING, Job.QUEUED]).update(
            status=Job.CANCELLED, finished_at=timezone.now()
        )
        # A proposed run never started: it ends here. A running one ends when its last job does.
        MigrationRun.objects.filter(pk=run.pk, status=Run.AWAITING_APPROVAL).update(
            status=Run.CANCELLED, finished_at=timezone.now()
        )
        run.refresh_from_db()
        _run_event(
            run,
            "MigrationRunCancelRequested",
            {"number": run.number, "by": run.cancelled_by_label, "jobs_cancelled": cancelled},
        )
        _audit(
            actor=actor if actor is not None else CLI,
            action=AuditAction.MIGRATION_RUN_CANCEL,
            run=run,
            summary=f"Cancelled run #{run.number} ({cancelled} jobs not started)",
            request=request,
        )
    run_finalize_if_done(run_id=run.pk)
    run.refresh_from_db()
    return run


# --- fan-out ---------------------------------------------------------------------------------


def _after_commit(fn) -> None:
    """Side effects (dispatch, Celery messages) only once the rows they refer to are committed."""
    transaction.on_commit(fn)


def _enqueue(job_ids: list[int]) -> None:
    from tenants.migration_runs.tasks import migration_job_run

    for job_id in job_ids:
        migration_job_run.delay(job_id)


def run_dispatch(*, run_id: Any) -> list[int]:
    """Queue the next jobs of the run's current batch within each server's cap; finalize when done."""
    cap = max(1, int(settings.MIGRATIONS_MAX_PER_SERVER))
    queued: list[int] = []
    with transaction.atomic():
        # One dispatcher at a time across runs, so the per-server count cannot be overshot.
        connection.cursor().execute("SELECT pg_advisory_xact_lock(%s)", [_DISPATCH_LOCK_KEY])
        run = MigrationRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != Run.RUNNING or run.cancel_requested:
            pass
        else:
            open_jobs = run.jobs.filter(status__in=MigrationJob.OPEN)
            batch = open_jobs.order_by("batch").values_list("batch", flat=True).first()
            canary_failed = run.canary_size and run.jobs.filter(batch=0, status=Job.FAILED).exists()
            if batch is not None and not (batch == 1 and canary_failed):
                busy = dict(
                    MigrationJob.objects.filter(status__in=[Job.QUEUED, Job.RUNNING])
                    .values_list("server")
                    .annotate(n=Count("id"))
                )
                servers = sorted(set(run.jobs.filter(status=Job.PENDING, batch=batch).values_list("server", flat=True)))
                now = timezone.now()
                for server in servers:
                    free = cap - busy.get(server, 0)
                    if free <= 0:
                        continue
                    ids = list(
                        run.jobs.filter(status=Job.PENDING, batch=batch, server=server)
                        .order_by("id")
                        .values_list("id", flat=True)[:free]
                    )
                    MigrationJob.objects.filter(pk__in=ids, status=Job.PENDING).update(status=Job.QUEUED, queued_at=now)
                    busy[server] = busy.get(server, 0) + len(ids)
                    queued.extend(ids)
        if queued:
            _after_commit(lambda: _enqueue(queued))
    if not queued:
        run_finalize_if_done(run_id=run_id)
    return queued


def run_finalize_if_done(*, run_id: Any) -> MigrationRun | None:
    """Close the run when no job can make progress any more (all done, canary failed, or cancelled)."""
    with transaction.atomic():
        run = MigrationRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != Run.RUNNING:
            return run
        if run.jobs.filter(status__in=[Job.QUEUED, Job.RUNNING]).exists():
            return run
        canary_failed = run.canary_size and run.jobs.filter(batch=0, status=Job.FAILED).exists()
        pending = run.jobs.filter(status=Job.PENDING).exists()
        if pending and not canary_failed and not run.cancel_requested:
            return run
        counts = _counts(run)
        if run.cancel_requested:
            run.status = Run.CANCELLED
        elif counts["failed"] or pending:
            run.status = Run.COMPLETED_WITH_ERRORS
        else:
            run.status = Run.COMPLETED
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at"])
        data = {"number": run.number, "status": run.status, "counts": counts}
        if canary_failed and pending:
            data["stopped"] = "The canary batch failed; the remaining placements were not started."
        _run_event(run, "MigrationRunFinished", data)
    return run


def _counts(run: MigrationRun) -> dict[str, int]:
    rows = dict(run.jobs.values_list("status").annotate(n=Count("id")))
    return {status: rows.get(status, 0) for status in Job.values}


# --- one job -------------------------------------------------------------------------------------


def _worker_name() -> str:
    return f"{socket.gethostname()}:{threading.get_native_id()}"


def _claim(job_id: int) -> int | None:
    """queued → running if the run still wants it; returns the attempt number that holds the claim."""
    lease = timedelta(seconds=settings.MIGRATIONS_JOB_LEASE_SECONDS)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {JOBS} j SET status = %s, started_at = %s, lease_expires_at = %s, worker = %s, error = '', "
            f"attempts = j.attempts + 1 FROM {RUNS} r "
            "WHERE j.id = %s AND j.status = %s AND r.id = j.run_id AND r.status = %s AND NOT r.cancel_requested "
            "RETURNING j.attempts",
            [Job.RUNNING, now, now + lease, _worker_name(), job_id, Job.QUEUED, Run.RUNNING],
        )
        row = cursor.fetchone()
    return row[0] if row else None


class _Heartbeat(threading.Thread):
    """Renews the job's lease while the migration runs, so only a dead worker's job expires."""

    def __init__(self, job_id: int, attempt: int) -> None:
        super().__init__(daemon=True, name=f"migration-job-{job_id}-heartbeat")
        self.job_id, self.attempt = job_id, attempt
        self.stop = threading.Event()

    def run(self) -> None:
        lease = settings.MIGRATIONS_JOB_LEASE_SECONDS
        try:
            while not self.stop.wait(max(0.2, lease / 3)):
                MigrationJob.objects.filter(pk=self.job_id, status=Job.RUNNING, attempts=self.attempt).update(
                    lease_expires_at=timezone.now() + timedelta(seconds=lease)
                )
        except Exception:  # a missed beat only risks an early sweep, which the claim check absorbs
            logger.exception("migration job %s heartbeat failed", self.job_id)
        finally:
            close_old_connections()
            connection.close()


def _target_for(job: MigrationJob) -> plans.Target | None:
    found = plans.targets(keys=[job.target])
    return found[0] if found else None


def _apply(job: MigrationJob) -> None:
    """Migrate the control plane (Django's `migrate`, signals included) or a template (the per-placement
    applier, under provisioning's template locks so nobody clones a half-migrated template)."""
    if job.target == plans.CONTROL:
        call_command("migrate", database="owner", interactive=False, verbosity=0, stdout=StringIO())
    elif job.target == plans.TEMPLATE_SCHEMA:
        with placements.owner_connect(autocommit=True) as lock:
            # The same lock provisioning takes around "is the template current / rebuild".
            lock.execute("SELECT pg_advisory_lock(%s)", [placements._TEMPLATE_LOCK_KEY])
            if not placements.schema_exists(placements.template_schema()):
                placements.template_schema_rebuild()  # never built yet: build it from all migrations
                return
            executor.apply_pending(SimpleNamespace(database_alias="default", schema_name=placements.template_schema()))
    elif job.target == plans.TEMPLATE_DATABASE:
        with placements.owner_connect(autocommit=True) as lock:
            # CREATE DATABASE … TEMPLATE needs the template free of connections: hold provisioning's lock.
            lock.execute("SELECT pg_advisory_lock(%s)", [placements._TEMPLATE_LOCK_KEY + 1])
            try:
                executor.apply_pending(placements._TemplatePlacement())
            finally:
                placements.unregister_alias(placements.TEMPLATE_ALIAS)
    else:
        executor.apply_pending(Placement.objects.get(pk=job.placement_id))


def job_execute(*, job_id: int) -> str:
    """Run one job (the Celery task's body). Safe to deliver twice: only the claim holder proceeds."""
    attempt = _claim(job_id)
    if attempt is None:
        job = MigrationJob.objects.filter(pk=job_id).select_related("run").first()
        if job is not None and job.status == Job.QUEUED and (job.run.cancel_requested or job.run.is_finished):
            MigrationJob.objects.filter(pk=job_id, status=Job.QUEUED).update(
                status=Job.CANCELLED, finished_at=timezone.now()
            )
            run_finalize_if_done(run_id=job.run_id)
        return "not-claimed"
    job = MigrationJob.objects.select_related("run", "placement").get(pk=job_id)
    heartbeat = _Heartbeat(job_id, attempt)
    heartbeat.start()
    started = time.monotonic()
    outcome, error, applied = Job.SUCCEEDED, "", []
    try:
        placement = job.placement
        if placement is not None:
            # Reads the placement's applied migrations and applies what is pending in one transaction.
            applied = [plans.fmt(k) for k in executor.apply_pending(placement)]
        else:
            target = _target_for(job)
            if target is None:
                raise MigrationRunError("The placement no longer exists.")
            st = plans.status([target])[0]
            if st.error:
                raise MigrationRunError(st.error)
            if st.pending:
                _apply(job)
                applied = [plans.fmt(k) for k in st.pending]
        if not applied:
            outcome = Job.SKIPPED  # applied meanwhile (e.g. by another run): no executor opened
    except Exception as exc:
        outcome, error = Job.FAILED, _error_text(exc)
        logger.warning("migration job %s (%s) failed: %s", job_id, job.label, error.splitlines()[0] if error else "")
    finally:
        heartbeat.stop.set()
        heartbeat.join(timeout=5)
    duration_ms = int((time.monotonic() - started) * 1000)
    handed_to = None
    with transaction.atomic():
        recorded = MigrationJob.objects.filter(pk=job_id, status=Job.RUNNING, attempts=attempt).update(
            status=outcome,
            error=error,
            applied=applied,
            finished_at=timezone.now(),
            duration_ms=duration_ms,
            lease_expires_at=None,
        )
        if recorded:
            event = {Job.SUCCEEDED: "MigrationJobSucceeded", Job.FAILED: "MigrationJobFailed"}.get(
                outcome, "MigrationJobSkipped"
            )
            data = {"attempt": attempt, "worker": job.worker, "applied": applied, "duration_ms": duration_ms}
            _job_event(job, event, {**data, "error": error})
            handed_to = _hand_off(job)
    if not recorded:
        logger.warning("migration job %s finished after losing its claim; outcome not recorded", job_id)
    if handed_to is None:
        run_dispatch(run_id=job.run_id)  # batch boundary, end of run, cancel: the full rules
    return outcome if recorded else "stale"


def _hand_off(job: MigrationJob) -> int | None:
    """The common case of dispatch, in the finishing job's transaction: queue the next pending job of
    the same run, batch and server if the server is under its cap. Returns its id (sent on commit)."""
    cap = max(1, int(settings.MIGRATIONS_MAX_PER_SERVER))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DISPATCH_LOCK_KEY])
        cursor.execute(
            f"UPDATE {JOBS} SET status = %s, queued_at = now() WHERE id = ("
            f"  SELECT j.id FROM {JOBS} j JOIN {RUNS} r ON r.id = j.run_id"
            "   WHERE j.run_id = %s AND j.status = %s AND j.batch = %s AND j.server = %s"
            "     AND r.status = %s AND NOT r.cancel_requested ORDER BY j.id LIMIT 1"
            f") AND (SELECT count(*) FROM {JOBS} WHERE server = %s AND status IN (%s, %s)) < %s RETURNING id",
            [
                Job.QUEUED,
                job.run_id,
                Job.PENDING,
                job.batch,
                job.server,
                Run.RUNNING,
                job.server,
                Job.QUEUED,
                Job.RUNNING,
                cap,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    _after_commit(lambda: _enqueue([row[0]]))
    return row[0]


def _error_text(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = f"{exc.__class__.__name__}: {exc}".strip()
    if cause is not None and str(cause) and str(cause) not in text:
        text += f"\n{cause.__class__.__name__}: {cause}"
    return text[:4000]


# --- sweeper -------------------------------------------------------------------------------------


def sweep() -> dict[str, int]:
    """Jobs whose worker died (lease ran out) go back to pending, or fail after too many attempts;
    queued jobs whose message was lost are re-queued; every open run is dispatched again."""
    now = timezone.now()
    max_attempts = settings.MIGRATIONS_JOB_MAX_ATTEMPTS
    retried = failed = requeued = 0
    expired = list(MigrationJob.objects.select_related("run").filter(status=Job.RUNNING, lease_expires_at__lt=now))
    for job in expired:
        with transaction.atomic():
            if job.attempts >= max_attempts:
                n = MigrationJob.objects.filter(pk=job.pk, status=Job.RUNNING, attempts=job.attempts).update(
                    status=Job.FAILED,
                    finished_at=now,
                    lease_expires_at=None,
                    error=f"The worker stopped responding during {job.attempts} attempts; giving up.",
                )
                if n:
                    failed += 1
                    _job_event(job, "MigrationJobFailed", {"attempt": job.attempts, "error": "worker lost"})
            else:
                n = MigrationJob.objects.filter(pk=job.pk, status=Job.RUNNING, attempts=job.attempts).update(
                    status=Job.PENDING,
                    lease_expires_at=None,
                    queued_at=None,
                    error=f"Worker {job.worker} stopped responding (attempt {job.attempts}); retrying.",
                )
                if n:
                    retried += 1
                    _job_event(job, "MigrationJobWorkerLost", {"attempt": job.attempts, "worker": job.worker})
    grace = now - timedelta(seconds=settings.MIGRATIONS_QUEUED_GRACE_SECONDS)
    requeued = MigrationJob.objects.filter(status=Job.QUEUED, queued_at__lt=grace).update(
        status=Job.PENDING, queued_at=None
    )
    for run_id in MigrationRun.objects.filter(status=Run.RUNNING).values_list("pk", flat=True):
        run_dispatch(run_id=run_id)
    return {"retried": retried, "failed": failed, "requeued": requeued}


# --- dry run ------------------------------------------------------------------------------------


@dataclass
class DryRun:
    statuses: list[plans.TargetStatus]
    sql: dict[str, str]  # "app.name" → SQL from sqlmigrate

    @property
    def with_work(self) -> list[plans.TargetStatus]:
        return [s for s in self.statuses if s.pending]


def dry_run(*, target_keys: list[str] | None = None) -> DryRun:
    """The plan per target and the SQL of every pending migration; changes nothing."""
    found = plans.targets() if target_keys is None else _validate_keys(target_keys)
    statuses = plans.status(found)
    sql_by_key: dict[str, str] = {}
    for st in statuses:
        for key in st.pending:
            name = plans.fmt(key)
            if name not in sql_by_key:
                sql_by_key[name] = migration_sql(key)
    return DryRun(statuses=statuses, sql=sql_by_key)


def migration_sql(key: plans.MigrationKey) -> str:
    out = StringIO()
    try:
        call_command("sqlmigrate", key[0], key[1], database="owner", stdout=out, no_color=True)
    except Exception as exc:  # e.g. RunPython-only migrations still print; anything else is shown, not raised
        return f"-- could not render SQL: {exc.__class__.__name__}: {exc}"
    return out.getvalue().strip() or "-- (no SQL: Python-only operations)"


def run_counts(run: MigrationRun) -> dict[str, int]:
    return _counts(run)
