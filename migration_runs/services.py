"""Cross-tenant migration runs: start, approve, reject, cancel, resume — on the job engine.

Flow (docs/migration_runs.md):
- `run_start` reads every target's status in bulk (plans.status), creates the run and one
  MigrationJob per target, each with its engine job (kind `migration_runs.apply`, group = the
  run, batch 0 = canary, concurrency key = the database server). Targets with nothing to apply
  are `skipped` right away and never open a migration executor.
- The engine (jobs/services.py) queues pending jobs of the run's current batch while their
  server has fewer than MIGRATIONS_MAX_PER_SERVER jobs queued or running — across all runs —
  and hands each freed slot to the next job; a failed canary halts the later batch. It claims,
  leases, heartbeats and sweeps them; a killed worker's job goes back to pending (up to
  MIGRATIONS_JOB_MAX_ATTEMPTS lost workers). A migration that raises is not retried: its
  transaction rolled back and a re-run resumes it.
- A failing job never blocks the others; when nothing in the run can progress any more the run
  ends `completed`, `completed_with_errors` or `cancelled` (`on_group_idle`). A re-run
  (`run_resume`) is a new run over the failed/pending/cancelled targets of the old one, planned afresh.
Every run, job and outcome is appended to the control-plane event log; every operator action is
also in the audit trail.

Why one module: a run's states (proposed, running, finishing, cancelled) are changed by the
operator actions and by the job kind's hooks alike; they stay readable side by side.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from io import StringIO
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count, Max
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, SystemActor, actor_label, actor_user
from core.errors import Conflict, InvalidInput
from core.permissions import Role, check_role
from events.services import control_event_append
from jobs.models import Job
from jobs.registry import JobContext, JobHandler, PermanentError, Refuse, register
from jobs.services import JobCancelled, error_text, fault_point, jobs_cancel_open, jobs_create_many, jobs_release
from migration_runs import executor, plans, verification
from migration_runs.models import MigrationJob, MigrationRun
from tenants import migration_state, placements
from tenants.models import Placement

logger = logging.getLogger(__name__)
Status = MigrationJob.Status
Run = MigrationRun.Status
APPLY = "migration_runs.apply"
GROUP = "migration_run"
CLI = SystemActor("manage.py migrate_tenants")
_START_LOCK_KEY = 0x7E4A61


class MigrationRunError(InvalidInput):
    """Bad input or a state that forbids the action; the message is one sentence for the operator."""


# --- evidence -----------------------------------------------------------------------------


def _event(*, aggregate_type: str, aggregate_id: Any, event_type: str, data: dict, correlation_id: Any = None) -> None:
    """Append to the control-plane event log (change-management evidence), in the caller's transaction."""
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


def _job_event(mjob: MigrationJob, event_type: str, data: dict) -> None:
    base = {"run_id": str(mjob.run_id), "run_number": mjob.run.number, "target": mjob.target, "label": mjob.label}
    _event(
        aggregate_type="migration_job",
        aggregate_id=f"{mjob.run_id}:{mjob.target}",
        event_type=event_type,
        data={**base, **data},
        correlation_id=mjob.run_id,
    )


# --- starting a run ---------------------------------------------------------------------------


def _check_admin(actor: Actor) -> None:
    """Operators need the Admin role; the command line (a SystemActor) already has the database."""
    if not isinstance(actor, SystemActor):
        check_role(actor, Role.ADMIN)


def _next_number() -> int:
    return (MigrationRun.objects.aggregate(n=Max("number"))["n"] or 0) + 1


def _validate_keys(keys: list[str]) -> list[plans.Target]:
    if not keys:
        raise MigrationRunError("Choose at least one placement.")
    found = plans.targets(keys=keys)
    unknown = sorted(set(keys) - {t.key for t in found})
    if unknown:
        raise MigrationRunError(f"Unknown placement: {unknown[0][:80]}.")
    return found


def _chunks(rows: list[tuple[plans.TargetStatus, int]]) -> list[list[tuple[plans.TargetStatus, int]]]:
    """The targets with work, grouped into engine jobs: the control plane and each template alone;
    placements of one batch and server together, at most MIGRATIONS_PLACEMENTS_PER_JOB per job, and
    over at least MIGRATIONS_MAX_PER_SERVER jobs when there are enough, so every slot gets work."""
    chunks: list[list[tuple[plans.TargetStatus, int]]] = []
    by_server: dict[tuple[int, str], list[tuple[plans.TargetStatus, int]]] = {}
    for st, batch in rows:
        if not st.pending:
            continue
        if st.target.placement_id is None:
            chunks.append([(st, batch)])
        else:
            by_server.setdefault((batch, st.target.server), []).append((st, batch))
    cap = max(1, int(settings.MIGRATIONS_MAX_PER_SERVER))
    most = max(1, int(settings.MIGRATIONS_PLACEMENTS_PER_JOB))
    for members in by_server.values():
        size = max(1, min(most, math.ceil(len(members) / cap)))
        chunks.extend(members[i : i + size] for i in range(0, len(members), size))
    return chunks


def run_start(
    *,
    actor: Actor,
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
    read_started = timezone.now()
    statuses = plans.status(found)
    summary: dict[str, int] = {}
    for st in statuses:
        for key in st.pending:
            summary[plans.fmt(key)] = summary.get(plans.fmt(key), 0) + 1
    now = timezone.now()
    needs_approval = bool(settings.MIGRATIONS_REQUIRE_APPROVAL) and not isinstance(actor, SystemActor)
    scope = (
        MigrationRun.Scope.RESUME
        if resumed_from
        else (MigrationRun.Scope.ALL if target_keys is None else MigrationRun.Scope.SELECTED)
    )
    with transaction.atomic():
        connection.cursor().execute("SELECT pg_advisory_xact_lock(%s)", [_START_LOCK_KEY])  # run numbers in order
        run = MigrationRun.objects.create(
            number=_next_number(),
            status=Run.AWAITING_APPROVAL if needs_approval else Run.RUNNING,
            scope=scope,
            canary_size=canary_size,
            resumed_from=resumed_from,
            created_by=actor_user(actor),
            created_by_label=actor_label(actor),
            via=via,
            plan_summary=summary,
            note=note[:300],
            started_at=None if needs_approval else now,
        )
        canary_left = canary_size
        rows: list[tuple[plans.TargetStatus, int]] = []
        for st in statuses:
            t = st.target
            batch = 1
            if canary_size and st.pending and (t.kind == "control" or (t.placement_id and canary_left > 0)):
                batch = 0
                if t.placement_id:
                    canary_left -= 1
            rows.append((st, batch))
        chunks = _chunks(rows)
        created = jobs_create_many(
            [
                Job(
                    kind=APPLY,
                    group_type=GROUP,
                    group_id=str(run.pk),
                    batch=chunk[0][1],
                    concurrency_key=chunk[0][0].target.server,
                    held=needs_approval,
                    payload={"targets": len(chunk)},
                    correlation_id=run.pk,
                    requested_by_label=run.created_by_label,
                )
                for chunk in chunks
            ]
        )
        carrier = {st.target.key: job for job, chunk in zip(created, chunks, strict=True) for st, _ in chunk}
        MigrationJob.objects.bulk_create(
            [
                MigrationJob(
                    run=run,
                    job=carrier.get(st.target.key),
                    target=st.target.key,
                    kind=st.target.kind,
                    placement_id=st.target.placement_id,
                    label=st.target.label,
                    server=st.target.server,
                    batch=batch,
                    plan=[plans.fmt(k) for k in st.pending],
                    # Nothing to apply: skipped at planning, never queued (no executor opened).
                    state=Status.PENDING if st.pending else Status.SKIPPED,
                    finished_at=None if st.pending else now,
                    error=st.error,
                )
                for st, batch in rows
            ],
            batch_size=1000,
        )
        verification.reconcile(statuses, read_started=read_started)  # planning read the truth: record it
        work = sum(1 for st, _ in rows if st.pending)
        data = {
            "number": run.number,
            "triggered_by": run.created_by_label,
            "via": via,
            "scope": scope,
            "targets": len(rows),
            "with_work": work,
            "skipped_nothing_to_apply": len(rows) - work,
            "canary_size": canary_size,
            "plan": summary,
            "resumed_from": str(resumed_from.pk) if resumed_from else None,
            "approval_required": needs_approval,
        }
        _run_event(run, "MigrationRunRequested", data)
        audit_record(
            actor=actor,
            target_type="migration_run",
            target_id=run.pk,
            action=AuditAction.MIGRATION_RUN_PROPOSE if needs_approval else AuditAction.MIGRATION_RUN_START,
            summary=f"Run #{run.number}: {work} of {len(rows)} placements have migrations to apply",
            request=request,
            details=data,
        )
        if not needs_approval:
            _run_event(run, "MigrationRunStarted", {"number": run.number, "approved_by": None})
            run_finalize_if_done(run_id=run.pk)  # nothing to apply anywhere: done at once
    run.refresh_from_db()
    return run


def run_resume(
    *, actor: Actor, run: MigrationRun, via: str = "web", request: HttpRequest | None = None
) -> MigrationRun:
    """A new run over the targets the old one did not finish (failed, pending, cancelled), planned afresh."""
    _check_admin(actor)
    if not run.is_finished:
        raise MigrationRunError("This run is still going; cancel it or wait for it to finish before re-running.")
    unfinished = [Status.FAILED, Status.PENDING, Status.CANCELLED, Status.QUEUED, Status.RUNNING]
    keys = list(run.jobs.filter(state__in=unfinished).values_list("target", flat=True))
    keys = [k for k in keys if not k.startswith("placement:") or Placement.objects.filter(pk=k[10:]).exists()]
    if not keys:
        raise MigrationRunError("Nothing to resume: every placement of this run succeeded or had nothing to apply.")
    return run_start(actor=actor, target_keys=keys, resumed_from=run, via=via, request=request)


def run_approve(*, actor: User, run: MigrationRun, request: HttpRequest | None = None) -> MigrationRun:
    """Four-eyes: a second Admin lets a proposed run fan out."""
    check_role(actor, Role.ADMIN)
    if run.created_by_id == actor.pk:
        raise MigrationRunError("A run needs a second Admin's approval; you proposed this one.")
    with transaction.atomic():
        now = timezone.now()
        updated = MigrationRun.objects.filter(pk=run.pk, status=Run.AWAITING_APPROVAL).update(
            status=Run.RUNNING, approved_by=actor, approved_at=now, started_at=now
        )
        if not updated:
            raise Conflict("This run is not awaiting approval.")
        run.refresh_from_db()
        _run_event(run, "MigrationRunApproved", {"number": run.number, "approved_by": actor_label(actor)})
        _run_event(run, "MigrationRunStarted", {"number": run.number, "approved_by": actor_label(actor)})
        audit_record(
            actor=actor,
            target_type="migration_run",
            target_id=run.pk,
            action=AuditAction.MIGRATION_RUN_APPROVE,
            summary=f"Approved run #{run.number}",
            request=request,
        )
        jobs_release(group=(GROUP, run.pk))
        run_finalize_if_done(run_id=run.pk)
    return run


def run_reject(*, actor: Actor, run: MigrationRun, request: HttpRequest | None = None) -> MigrationRun:
    check_role(actor, Role.ADMIN)
    with transaction.atomic():
        now = timezone.now()
        updated = MigrationRun.objects.filter(pk=run.pk, status=Run.AWAITING_APPROVAL).update(
            status=Run.REJECTED, finished_at=now
        )
        if not updated:
            raise Conflict("This run is not awaiting approval.")
        reason = f"Run rejected by {actor_label(actor)}."
        jobs_cancel_open(group=(GROUP, run.pk), reason=reason)
        _targets_cancel_waiting(run, reason)
        run.refresh_from_db()
        _run_event(run, "MigrationRunRejected", {"number": run.number, "rejected_by": actor_label(actor)})
        audit_record(
            actor=actor,
            target_type="migration_run",
            target_id=run.pk,
            action=AuditAction.MIGRATION_RUN_REJECT,
            summary=f"Rejected run #{run.number}",
            request=request,
        )
    return run


def run_cancel(*, actor: Actor, run: MigrationRun, request: HttpRequest | None = None) -> MigrationRun:
    """Stop new jobs; running ones finish. The run ends `cancelled` once nothing is running."""
    _check_admin(actor)
    with transaction.atomic():
        updated = MigrationRun.objects.filter(
            pk=run.pk, status__in=[Run.RUNNING, Run.AWAITING_APPROVAL], cancel_requested=False
        ).update(cancel_requested=True, cancelled_by_label=actor_label(actor))
        if not updated:
            raise Conflict("This run has already finished or is being cancelled.")
        reason = f"Cancelled by {actor_label(actor)}."
        jobs_cancel_open(group=(GROUP, run.pk), reason=reason)
        cancelled = _targets_cancel_waiting(run, reason)  # a running job stops at its next placement
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
        audit_record(
            actor=actor,
            target_type="migration_run",
            target_id=run.pk,
            action=AuditAction.MIGRATION_RUN_CANCEL,
            request=request,
            summary=f"Cancelled run #{run.number} ({cancelled} jobs not started)",
        )
        run_finalize_if_done(run_id=run.pk)
    run.refresh_from_db()
    return run


def _targets_cancel_waiting(run: MigrationRun, reason: str) -> int:
    """End the run's targets whose job was cancelled before it started; returns how many."""
    return run.jobs.filter(state=Status.PENDING, job__state=Job.State.CANCELLED).update(
        state=Status.CANCELLED, error=reason, finished_at=timezone.now()
    )


def run_finalize_if_done(*, run_id: Any) -> MigrationRun | None:
    """Close the run when no job can make progress any more (all done, canary failed, or cancelled)."""
    with transaction.atomic():
        run = MigrationRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != Run.RUNNING:
            return run
        jobs = run.jobs.all()
        if Job.objects.filter(
            group_type=GROUP, group_id=str(run.pk), state__in=[Job.State.QUEUED, Job.State.RUNNING]
        ).exists():
            return run
        canary_failed = bool(run.canary_size) and jobs.filter(batch=0, state=Status.FAILED).exists()
        pending = jobs.filter(state__in=[Status.PENDING, Status.RUNNING]).exists()
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
        run.final_counts = counts
        run.save(update_fields=["status", "finished_at", "final_counts"])
        data: dict[str, Any] = {"number": run.number, "status": run.status, "counts": counts}
        if canary_failed and pending:
            data["stopped"] = "The canary batch failed; the remaining placements were not started."
        _run_event(run, "MigrationRunFinished", data)
    return run


def _counts(run: MigrationRun) -> dict[str, int]:
    rows = dict(run.jobs.values_list("state").annotate(n=Count("id")))
    return {status: rows.get(status, 0) for status in Status.values}


def run_counts(run: MigrationRun) -> dict[str, int]:
    return _counts(run)


# --- one job: the engine runs it, one target after another ----------------------------------------


def _target_for(mjob: MigrationJob) -> plans.Target | None:
    found = plans.targets(keys=[mjob.target])
    return found[0] if found else None


def _apply(mjob: MigrationJob) -> None:
    """Migrate the control plane (Django's `migrate`, signals included) or a template (the per-placement
    applier, under provisioning's template locks so nobody clones a half-migrated template)."""
    if mjob.target == plans.CONTROL:
        call_command("migrate", database="owner", interactive=False, verbosity=0, stdout=StringIO())
    elif mjob.target == plans.TEMPLATE_SCHEMA:
        with placements.owner_connect(autocommit=True) as lock:
            # The same lock provisioning takes around "is the template current / rebuild".
            lock.execute("SELECT pg_advisory_lock(%s)", [placements.TEMPLATE_LOCK_KEY])
            if not placements.schema_exists(placements.template_schema()):
                placements.template_schema_rebuild()  # never built yet: build it from all migrations
                return
            executor.apply_pending(SimpleNamespace(database_alias="default", schema_name=placements.template_schema()))
    elif mjob.target == plans.TEMPLATE_DATABASE:
        with placements.owner_connect(autocommit=True) as lock:
            # CREATE DATABASE … TEMPLATE needs the template free of connections: hold provisioning's lock.
            lock.execute("SELECT pg_advisory_lock(%s)", [placements.TEMPLATE_LOCK_KEY + 1])
            try:
                executor.apply_pending(placements.TemplatePlacement())
            finally:
                placements.unregister_alias(placements.TEMPLATE_ALIAS)


def _migrate(mjob: MigrationJob) -> list[str]:
    """Apply the target's pending migrations; returns what this call applied ("app.name").

    A placement's outcome is recorded in the control plane's MigrationState by the caller's
    transaction; the control plane and templates are read again by the next verification."""
    if mjob.target.startswith("placement:"):
        if mjob.placement is None:
            raise MigrationRunError("The placement no longer exists.")
        # Reads the placement's applied migrations and applies what is pending in one transaction.
        outcome = executor.apply_pending(mjob.placement)
        mjob._applied_after = outcome.after  # type: ignore[attr-defined]  # for _record_target
        return [plans.fmt(k) for k in outcome.now]
    target = _target_for(mjob)
    if target is None:
        raise MigrationRunError("The target no longer exists.")
    st = plans.status([target])[0]
    if st.error:
        raise MigrationRunError(st.error)
    if st.pending:
        _apply(mjob)
    return [plans.fmt(k) for k in st.pending]


def _target_event(mjob: MigrationJob, job: Job, event_type: str, **data: Any) -> None:
    info = {"attempt": job.attempts, "worker": job.worker, "applied": mjob.applied, "duration_ms": mjob.duration_ms}
    _job_event(mjob, event_type, {**info, **data})


def _record_target(
    mjob: MigrationJob, job: Job, *, applied: list[str], error: str, started: float, resumed: bool
) -> None:
    """The target's outcome, its placement's migration record and the evidence, in one transaction."""
    now = timezone.now()
    if error:
        state = Status.FAILED
    elif applied:
        state = Status.SUCCEEDED
    elif resumed and mjob.plan:
        # An earlier attempt of this job started this placement and died after its migration
        # committed: what the plan listed is applied now, by this run.
        state, applied = Status.SUCCEEDED, list(mjob.plan)
    else:
        state = Status.SKIPPED  # applied meanwhile (e.g. by another run): no executor opened
    mjob.state, mjob.applied, mjob.error = state, applied, error
    mjob.finished_at, mjob.duration_ms = now, int((time.monotonic() - started) * 1000)
    with transaction.atomic():
        mjob.save(update_fields=["state", "applied", "error", "finished_at", "duration_ms"])
        if mjob.placement is not None and not error:
            after = getattr(mjob, "_applied_after", None)
            if after is None:
                migration_state.placement_state_refresh(mjob.placement)
            else:
                location = migration_state.placement_location(mjob.placement)
                migration_state.state_record(location, [plans.fmt(k) for k in after])
        if error:
            _target_event(mjob, job, "MigrationJobFailed", error=error)
        else:
            kind = "MigrationJobSucceeded" if state == Status.SUCCEEDED else "MigrationJobSkipped"
            _target_event(mjob, job, kind, error="")


def _targets_end(
    job: Job, state: str, error: str, *, states: tuple[str, ...] = (Status.PENDING, Status.RUNNING)
) -> list[MigrationJob]:
    """End the job's targets that have not ended (in the engine's transaction); returns them."""
    open_targets = list(MigrationJob.objects.select_related("run").filter(job_id=job.pk, state__in=states))
    ended = state in MigrationJob.ENDED
    MigrationJob.objects.filter(pk__in=[m.pk for m in open_targets]).update(
        state=state, error=error, finished_at=timezone.now() if ended else None
    )
    for mjob in open_targets:
        mjob.state, mjob.error = state, error
    return open_targets


@register
class ApplyMigrations(JobHandler):
    """Migrates the targets a run gave this job, one after another, each in its own transaction.

    A target that fails is recorded and the job moves on to the next; the job ends failed if any
    did (so a failed canary halts the run). A worker that dies mid-way leaves the finished targets
    recorded; the next attempt carries on with the rest (the one it was migrating rolled back, or
    committed and then counts as applied by this run).
    """

    kind = APPLY
    title = "Migrate placements"
    halt_after_failed_batch = True  # a failed canary stops the rest of the run
    record_events = False  # the run's own events (MigrationJobSucceeded …, one per target) are the evidence
    operator_actions = False  # cancel and re-run from the Migrations screen

    def cap(self) -> int | None:
        return max(1, int(settings.MIGRATIONS_MAX_PER_SERVER))

    def attempts_allowed(self) -> int:
        return int(settings.MIGRATIONS_JOB_MAX_ATTEMPTS)

    def lease(self) -> float:
        return float(settings.MIGRATIONS_JOB_LEASE_SECONDS)

    def retryable(self, job: Job, exc: BaseException) -> bool:
        return False  # only lost workers are retried; a re-run (run_resume) picks up what failed

    def admit(self, job: Job) -> Refuse | None:
        run = MigrationRun.objects.get(pk=job.group_id)
        if run.status != Run.RUNNING or run.cancel_requested:
            return Refuse("The run was cancelled before this placement started.")
        return None

    def run(self, ctx: JobContext) -> dict[str, Any]:
        carried = MigrationJob.objects.select_related("run", "placement").filter(job_id=ctx.job.pk).order_by("id")
        total = carried.count()
        todo = list(carried.filter(state__in=[Status.PENDING, Status.RUNNING]))
        done, failed = total - len(todo), []
        for mjob in todo:
            if ctx.cancel_requested() or MigrationRun.objects.filter(pk=mjob.run_id, cancel_requested=True).exists():
                raise JobCancelled("The run was cancelled before this placement started.")
            ctx.progress(done, total, mjob.label)
            started = time.monotonic()
            resumed = mjob.started_at is not None  # an earlier attempt got this far and died
            if not resumed:
                mjob.started_at = timezone.now()
            MigrationJob.objects.filter(pk=mjob.pk).update(state=Status.RUNNING, started_at=mjob.started_at)
            try:
                applied, error = _migrate(mjob), ""
                fault_point(ctx.job, "target_migrated", ctx.attempt)  # tests: die before recording it
            except Exception as exc:  # noqa: BLE001 - one target's failure is its outcome; the others go on
                applied, error = [], error_text(exc)
                logger.warning("migration of %s failed: %s", mjob.label, error.splitlines()[0] if error else "")
            _record_target(mjob, ctx.job, applied=applied, error=error, started=started, resumed=resumed)
            if error:
                failed.append(mjob)
            done += 1
        ctx.progress(done, total, "")
        if failed:
            first = failed[0]
            raise PermanentError(
                f"{len(failed)} of {total} placements failed; {first.label}: {first.error.splitlines()[0]}"
            )
        return {"targets": total}

    def on_failed(self, job: Job, error: str) -> None:
        if error == "The worker running it died.":
            for mjob in _targets_end(job, Status.FAILED, job.error or error):
                _target_event(mjob, job, "MigrationJobFailed", error="worker lost")
        else:
            for mjob in _targets_end(job, Status.FAILED, error):  # failed outside any one target's migration
                _target_event(mjob, job, "MigrationJobFailed", error=error)

    def on_lost(self, job: Job) -> None:
        # The target it was migrating waits for the next attempt (its transaction rolled back, or
        # committed: the next attempt finds nothing pending and records it as applied by this run).
        for mjob in _targets_end(job, Status.PENDING, job.error, states=(Status.RUNNING,)):
            _job_event(mjob, "MigrationJobWorkerLost", {"attempt": job.attempts, "worker": job.worker})

    def on_cancelled(self, job: Job, reason: str) -> None:
        _targets_end(job, Status.CANCELLED, reason)

    def on_group_idle(self, group_type: str, group_id: str) -> None:
        run_finalize_if_done(run_id=group_id)


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
    # Evidence for change management (compliance check `change_management`): a run needs a dry run before it.
    control_event_append(
        aggregate_type="migration_plan",
        aggregate_id="dry_runs",
        event_type="MigrationDryRun",
        data={
            "placements": len(statuses),
            "with_work": sum(1 for s in statuses if s.pending),
            "migrations": sorted(sql_by_key),
            "scope": "all" if target_keys is None else "selected",
        },
        expected_version=None,
    )
    return DryRun(statuses=statuses, sql=sql_by_key)


def migration_sql(key: plans.MigrationKey) -> str:
    out = StringIO()
    try:
        call_command("sqlmigrate", key[0], key[1], database="owner", stdout=out, no_color=True)
    except Exception as exc:  # e.g. RunPython-only migrations still print; anything else is shown, not raised
        return f"-- could not render SQL: {exc.__class__.__name__}: {exc}"
    return out.getvalue().strip() or "-- (no SQL: Python-only operations)"
