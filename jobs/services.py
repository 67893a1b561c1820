"""The job engine: every long-running piece of work in the control plane runs through here.

Sagas (sagas/), cross-tenant migration runs (migration_runs/) and projection rebuilds
(events/) are kinds of jobs; so must be every new kind of background work. A kind registers a
handler (jobs/registry.py); this module gives it, once for all:

- **create and dispatch**: a job is created `pending` and queued (a Celery message sent on
  commit) as soon as it may run: not held, due, its group's earlier batches done, and under its
  kind's cap for its concurrency key (e.g. jobs per database server).
- **claim by conditional UPDATE**: `pending|queued → running`, `attempts + 1`, a lease; the
  attempt number is the fencing token. A worker that finishes after its job was handed to
  another attempt finds its token stale and records nothing.
- **leases with heartbeat**: a thread renews the lease while `run` works (and writes progress);
  only a dead worker's lease runs out.
- **retries with backoff**: exponential with jitter, up to the kind's max attempts;
  `PermanentError` gives up at once.
- **the sweeper** (beat, `jobs.sweep`): running jobs whose lease ran out go back to pending (or
  fail after too many lost workers); queued jobs whose message may be lost are sent again;
  pending jobs that may run are queued.
- **cancel and retry** for operators, **progress** for live screens, **error capture**.
- **the audit row and the control-plane event in the same transaction** as each transition;
  a handler's hooks run inside that transaction too.
- **fault injection** at named points, through a hook that only test settings switch on
  (JOBS_FAULT_HOOK, see tests/support/faults.py); production never imports it.

Messages carry only the job id, tasks are `acks_late`, and every path tolerates a message
delivered twice, late or never.

Why one module of this length: every transition of a job — dispatch, claim, record, retry, sweep,
cancel, requeue — is a conditional UPDATE on the same row under the same rules (fencing by attempt,
handler lock first). Kept side by side, each writer can be checked against the others.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Min, Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.module_loading import import_string

from audit.actions import AuditAction
from audit.services import audit_record
from core import eventlog
from core.actors import Actor, actor_label, actor_user
from core.errors import Conflict, NotFound
from jobs.models import Job
from jobs.registry import Defer, JobContext, JobHandler, PermanentError, Refuse, Skipped, handler_for, worker_name

logger = logging.getLogger(__name__)
State = Job.State
JOBS = Job._meta.db_table  # for the one statement written in SQL (dispatch); never user input


class JobCancelled(Exception):
    """Raised by `run` when it noticed `ctx.cancel_requested()` and stopped at a safe point."""


# --- configuration and small helpers -----------------------------------------------------------


def backoff(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: base, 2·base, 4·base … capped, plus up to 10% jitter."""
    base = float(settings.JOBS_RETRY_BACKOFF_SECONDS)
    cap = float(settings.JOBS_RETRY_BACKOFF_MAX_SECONDS)
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay * (1 + random.uniform(0, 0.1)) if delay else 0.0


def error_text(exc: BaseException) -> str:
    """One line for people (a PermanentError's message as is), plus the cause when it adds something."""
    if isinstance(exc, PermanentError):
        return str(exc)[:4000]
    text = f"{exc.__class__.__name__}: {exc}".strip()
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f"\n{cause.__class__.__name__}: {cause}"
    return text[:4000]


@cache
def _fault_hook() -> Any:
    path = getattr(settings, "JOBS_FAULT_HOOK", "")
    return import_string(path) if path else None


def fault_point(job: Job, point: str, attempt: int) -> None:
    """Test settings only: let tests/support/faults.py kill the worker or raise at `point`.

    The engine calls it before ("run") and after ("after_run") a job's work; a handler whose job
    does several things in turn may name finer points (e.g. after each placement it migrates)."""
    hook = _fault_hook()
    if hook is not None:
        hook(job, point, attempt)


def _send(job_id: int, countdown: float = 0) -> None:
    """Send the job's message once the current transaction commits (now, outside one)."""
    from jobs import tasks  # tasks imports this module: bound at call time

    transaction.on_commit(lambda: tasks.job_run.apply_async(args=[job_id], countdown=countdown or None), robust=True)


def _event(job: Job, event_type: str, **data: Any) -> None:
    if handler_for(job.kind).record_events:
        eventlog.append(
            aggregate_type="job",
            aggregate_id=str(job.pk),
            event_type=event_type,
            data={"kind": job.kind, "state": job.state, **data},
            correlation_id=job.correlation_id,
        )


def _set(job: Job, **fields: Any) -> None:
    """Mirror an UPDATE on the in-memory row (hooks see the new state)."""
    for key, value in fields.items():
        setattr(job, key, value)


def _due(now: Any) -> Q:
    return Q(run_after__isnull=True) | Q(run_after__lte=now)


# --- creating ---------------------------------------------------------------------------------


def job_create(
    *,
    kind: str,
    payload: dict[str, Any] | None = None,
    group: tuple[str, Any] | None = None,
    batch: int = 0,
    concurrency_key: str = "",
    held: bool = False,
    run_after: Any = None,
    max_attempts: int | None = None,
    actor: Actor | None = None,
    correlation_id: Any = None,
    send: bool = True,
) -> Job:
    """Create one job (inside the caller's transaction) and queue it if it may run now.

    `send=False` leaves it pending for the caller: a handler's `on_succeeded` returns such a
    job so that the engine can run it next in the same worker.
    """
    handler = handler_for(kind)
    now = timezone.now()
    user = actor_user(actor)
    simple = send and not held and run_after is None and handler.cap() is None and batch == 0
    job = Job.objects.create(
        kind=kind,
        payload=payload or {},
        group_type=group[0] if group else "",
        group_id=str(group[1]) if group else "",
        batch=batch,
        concurrency_key=concurrency_key,
        held=held,
        run_after=run_after,
        max_attempts=max_attempts or handler.attempts_allowed(),
        requested_by=user,
        requested_by_label=actor_label(actor) if actor is not None else "",
        correlation_id=correlation_id,
        # The common case needs no dispatch round: nothing can hold it back.
        state=State.QUEUED if simple else State.PENDING,
        queued_at=now if simple else None,
        created_at=now,
        updated_at=now,
    )
    if simple:
        _send(job.pk)
    elif send:
        dispatch(group=job.group, kinds=[kind])
    return job


def jobs_create_many(jobs: list[Job], *, max_attempts: int | None = None) -> list[Job]:
    """Bulk-create unsaved Job rows (e.g. one per placement of a run), then queue those that may run."""
    if not jobs:
        return []
    now = timezone.now()
    for job in jobs:
        if job.state not in (State.PENDING, State.SKIPPED, State.CANCELLED):
            raise ValueError(
                f"A new job starts pending (or skipped/cancelled when there is nothing to do), not {job.state}."
            )
        job.created_at = job.updated_at = now
        job.max_attempts = max_attempts or handler_for(job.kind).attempts_allowed()
    created = Job.objects.bulk_create(jobs, batch_size=1000)
    groups = {j.group for j in created if j.group}
    for group in groups:
        dispatch(group=group, kinds=sorted({j.kind for j in created}))
    if not groups:
        dispatch(kinds=sorted({j.kind for j in created}))
    return created


# --- dispatch: pending → queued while allowed --------------------------------------------------


def dispatch(
    *,
    group: tuple[str, str] | None = None,
    kinds: Iterable[str] | None = None,
    key: str | None = None,
    limit: int = 5000,
) -> list[int]:
    """Queue pending jobs that may run now (messages sent on commit); returns their ids.

    May run now = not held, due, no open job of its group in an earlier batch (nor, for kinds that
    halt, a failed one), and fewer than the kind's cap queued or running with its concurrency key.
    Looks at no more than `limit` candidates, earliest batch first.
    """
    now = timezone.now()
    qs = Job.objects.filter(state=State.PENDING, held=False).filter(_due(now))
    if group:
        qs = qs.filter(group_type=group[0], group_id=str(group[1]))
    if kinds is not None:
        qs = qs.filter(kind__in=list(kinds))
    if key is not None:
        qs = qs.filter(concurrency_key=key)
    fields = ("id", "kind", "concurrency_key", "group_type", "group_id", "batch")
    candidates = _batch_gate(list(qs.order_by("batch", "id").values_list(*fields)[:limit]))
    if not candidates:
        return []
    chosen: list[int] = []
    by_cap: dict[tuple[str, str], list[int]] = {}
    for job_id, kind, job_key, *_ in candidates:
        if handler_for(kind).cap() is None:
            chosen.append(job_id)
        else:
            by_cap.setdefault((kind, job_key), []).append(job_id)
    with transaction.atomic(), connection.cursor() as cursor:
        for (kind, job_key), ids in sorted(by_cap.items()):
            # One dispatcher per kind at a time (until commit), so a cap is never overshot.
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"jobs.dispatch:{kind}"])
            busy = Job.objects.filter(
                kind=kind, concurrency_key=job_key, state__in=[State.QUEUED, State.RUNNING]
            ).count()
            chosen.extend(ids[: max(0, (handler_for(kind).cap() or 0) - busy)])
        if not chosen:
            return []
        # RETURNING: exactly the rows this dispatcher moved (another one may have queued some meanwhile).
        cursor.execute(
            f"UPDATE {JOBS} SET state = %s, queued_at = %s, updated_at = %s "  # noqa: S608 - a model's table name
            "WHERE id = ANY(%s) AND state = %s RETURNING id",
            [State.QUEUED, now, now, chosen, State.PENDING],
        )
        queued = [row[0] for row in cursor.fetchall()]
        for job_id in queued:
            _send(job_id)
    return queued


def _batch_gate(candidates: list[tuple]) -> list[tuple]:
    """Drop candidates whose group still has an earlier batch open (or failed, for kinds that halt)."""
    groups = {(c[3], c[4]) for c in candidates if c[3]}
    if not groups:
        return candidates
    lowest_open: dict[tuple[str, str], int] = {}
    failed: dict[tuple[str, str], int] = {}
    for group_type in {g[0] for g in groups}:
        ids = [g[1] for g in groups if g[0] == group_type]
        rows = Job.objects.filter(group_type=group_type, group_id__in=ids)
        for gid, low in rows.filter(state__in=Job.OPEN).values_list("group_id").annotate(low=Min("batch")):
            lowest_open[(group_type, gid)] = low
        for gid, low in rows.filter(state=State.FAILED).values_list("group_id").annotate(low=Min("batch")):
            failed[(group_type, gid)] = low
    kept = []
    for c in candidates:
        group = (c[3], c[4])
        if c[3]:
            if c[5] > lowest_open.get(group, c[5]):
                continue
            if handler_for(c[1]).halt_after_failed_batch and failed.get(group, c[5]) < c[5]:
                continue
        kept.append(c)
    return kept


# --- claiming and running ------------------------------------------------------------------------


def job_execute(*, job_id: int, heartbeat: bool = True) -> str:
    """The Celery task's body: claim the job, run it, record the outcome; then any follow-up it chained.

    Safe to deliver twice: only the claim holder runs it. Returns what happened last (logs, tests).
    """
    result = job_claim(job_id=job_id)
    while isinstance(result, tuple):
        job, attempt = result
        result = _run_claimed(job, attempt, heartbeat=heartbeat)
    return result


def job_claim(*, job_id: int) -> tuple[Job, int] | str:
    """Claim the job for this worker: (job, attempt), or a word saying why not."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return "missing"
    handler = handler_for(job.kind)
    with transaction.atomic():
        handler.lock(job)
        return _claim_locked(job_id, handler)


def _claim_locked(job_id: int, handler: JobHandler) -> tuple[Job, int] | str:
    """Inside a transaction, after handler.lock: admit and claim, or say why not."""
    job = Job.objects.get(pk=job_id)
    now = timezone.now()
    if job.state not in (State.PENDING, State.QUEUED):
        return f"already-{job.state}"  # a redelivered message: someone else ran or is running it
    if job.held:
        return "held"
    if job.run_after and job.run_after > now:
        _send(job.pk, (job.run_after - now).total_seconds())
        return "not-due"
    decision = handler.admit(job)
    if isinstance(decision, Refuse):
        _finish(job, handler, State.CANCELLED, error=decision.reason)
        handler.on_cancelled(job, decision.reason)
        _event(job, "JobCancelled", reason=decision.reason)
        _after_end(job, handler)
        return "refused"
    if isinstance(decision, Defer):
        when = now + timedelta(seconds=decision.seconds)
        Job.objects.filter(pk=job.pk).update(state=State.PENDING, run_after=when, updated_at=now)
        _send(job.pk, decision.seconds)
        return "deferred"
    if isinstance(decision, Skipped):
        _finish(job, handler, State.SKIPPED, result=decision.result)
        handler.on_succeeded(job, decision.result)
        _after_end(job, handler)
        return "skipped"
    attempt = job.attempts + 1
    claimed = Job.objects.filter(pk=job.pk, state=job.state, attempts=job.attempts).update(
        state=State.RUNNING,
        attempts=attempt,
        lease_expires_at=now + timedelta(seconds=handler.lease()),
        worker=worker_name(),
        started_at=job.started_at or now,
        finished_at=None,
        run_after=None,
        updated_at=now,
    )
    if claimed != 1:
        return "lost-claim"  # admit wrote nothing (its contract), so there is nothing to undo
    _set(job, state=State.RUNNING, attempts=attempt, started_at=job.started_at or now, worker=worker_name())
    handler.on_started(job, attempt)
    _event(job, "JobStarted", attempt=attempt, worker=job.worker)
    return job, attempt


def _finish(job: Job, handler: JobHandler, state: str, *, error: str = "", result: dict | None = None) -> None:
    now = timezone.now()
    fields: dict[str, Any] = {"state": state, "finished_at": now, "lease_expires_at": None, "updated_at": now}
    if error or state != State.FAILED:
        fields["error"] = error
    if result is not None:
        fields["result"] = result
    Job.objects.filter(pk=job.pk).update(**fields)
    _set(job, **fields)


class _Progress:
    """Progress reported by `run`: written by the heartbeat thread, or directly when running inline."""

    def __init__(self, job_id: int, attempt: int, *, direct: bool) -> None:
        self.job_id, self.attempt, self.direct = job_id, attempt, direct
        self.latest: tuple[int, int | None, str] | None = None
        self.cancelled = False
        self._written = 0.0
        self._lock = threading.Lock()

    def report(self, done: int, total: int | None, note: str) -> None:
        with self._lock:
            self.latest = (int(done), None if total is None else int(total), note[:200])
        if self.direct and time.monotonic() - self._written > 0.5:
            self.flush()

    def fields(self) -> dict[str, Any]:
        with self._lock:
            latest, self.latest = self.latest, None
        if latest is None:
            return {}
        done, total, note = latest
        fields: dict[str, Any] = {"progress_done": done, "progress_note": note}
        if total is not None:
            fields["progress_total"] = total
        return fields

    def flush(self) -> None:
        fields = self.fields()
        if fields:
            Job.objects.filter(pk=self.job_id, state=State.RUNNING, attempts=self.attempt).update(**fields)
            self._written = time.monotonic()

    def cancel_requested(self) -> bool:
        if self.direct:
            return Job.objects.filter(pk=self.job_id, cancel_requested=True).exists()
        return self.cancelled


class _Heartbeat(threading.Thread):
    """Renews the lease (and writes progress) while `run` works, so only a dead worker's job expires."""

    def __init__(self, job: Job, attempt: int, lease: float, progress: _Progress) -> None:
        super().__init__(daemon=True, name=f"job-{job.pk}-heartbeat")
        self.job_id, self.attempt, self.lease, self.progress = job.pk, attempt, lease, progress
        self.stop = threading.Event()

    def run(self) -> None:
        interval = max(0.2, min(self.lease / 3, float(settings.JOBS_HEARTBEAT_SECONDS)))
        try:
            while not self.stop.wait(interval):
                now = timezone.now()
                fields = {"lease_expires_at": now + timedelta(seconds=self.lease), **self.progress.fields()}
                rows = Job.objects.filter(pk=self.job_id, state=State.RUNNING, attempts=self.attempt)
                if not rows.update(**fields):
                    self.progress.cancelled = True  # the claim is gone (swept): stop at the next safe point
                    return
                self.progress.cancelled = rows.filter(cancel_requested=True).exists()
        except Exception:  # a missed beat only risks an early sweep, which the fencing token absorbs
            logger.exception("job %s heartbeat failed", self.job_id)
        finally:
            close_old_connections()
            connection.close()


def _run_claimed(job: Job, attempt: int, *, heartbeat: bool) -> tuple[Job, int] | str:
    handler = handler_for(job.kind)
    progress = _Progress(job.pk, attempt, direct=not heartbeat)
    ctx = JobContext(job=job, attempt=attempt, _progress=progress.report, _cancelled=progress.cancel_requested)
    beat = _Heartbeat(job, attempt, handler.lease(), progress) if heartbeat else None
    if beat is not None:
        beat.start()
    started = time.monotonic()
    try:
        fault_point(job, "run", attempt)
        outcome = handler.run(ctx)
        fault_point(job, "after_run", attempt)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, then retried or given up
        failure: BaseException | None = exc
    else:
        failure = None
    finally:
        if beat is not None:
            beat.stop.set()
            beat.join(timeout=5)
    duration_ms = int((time.monotonic() - started) * 1000)
    extra = progress.fields()
    if failure is not None:
        if not isinstance(failure, PermanentError | JobCancelled):
            logger.warning("job %s (%s) attempt %s failed: %s", job.pk, job.kind, attempt, failure)
        return _record_failure(job, attempt, failure, duration_ms, extra)
    return _record_success(job, attempt, outcome, duration_ms, extra)


def _record_success(job: Job, attempt: int, outcome: Any, duration_ms: int, extra: dict) -> tuple[Job, int] | str:
    handler = handler_for(job.kind)
    skipped = isinstance(outcome, Skipped)
    result = outcome.result if skipped else (outcome or {})
    state = State.SKIPPED if skipped else State.SUCCEEDED
    with transaction.atomic():
        handler.lock(job)
        now = timezone.now()
        fields = {
            "state": state,
            "result": result,
            "finished_at": now,
            "lease_expires_at": None,
            "duration_ms": duration_ms,
            "error": "",
            "updated_at": now,
            **extra,
        }
        if not Job.objects.filter(pk=job.pk, state=State.RUNNING, attempts=attempt).update(**fields):
            return "stale"  # the sweeper gave the job to another attempt meanwhile
        _set(job, **fields)
        _event(job, "JobSkipped" if skipped else "JobSucceeded", attempt=attempt, duration_ms=duration_ms)
        follow = handler.on_succeeded(job, result)
        claimed: tuple[Job, int] | str | None = None
        if follow is not None:
            follow_handler = handler_for(follow.kind)
            if follow_handler.chain and settings.JOBS_CHAIN:
                follow_handler.lock(follow)
                claimed = _claim_locked(follow.pk, follow_handler)  # run by this worker once this commits
        _after_end(job, handler)
        if isinstance(claimed, tuple):
            return claimed
        if follow is not None and claimed is None:
            dispatch(group=follow.group, kinds=[follow.kind])  # not chained: it gets a message
        return str(state)


def _record_failure(job: Job, attempt: int, exc: BaseException, duration_ms: int, extra: dict) -> str:
    handler = handler_for(job.kind)
    message = (str(exc) or "Cancelled while running.") if isinstance(exc, JobCancelled) else error_text(exc)
    with transaction.atomic():
        handler.lock(job)
        job = Job.objects.get(pk=job.pk)
        if job.state != State.RUNNING or job.attempts != attempt:
            return "stale"
        now = timezone.now()
        base = {"lease_expires_at": None, "duration_ms": duration_ms, "error": message, "updated_at": now, **extra}
        if isinstance(exc, JobCancelled):
            _finish(job, handler, State.CANCELLED, error=message)
            Job.objects.filter(pk=job.pk).update(duration_ms=duration_ms, **extra)
            handler.on_cancelled(job, job.error)
            _event(job, "JobCancelled", attempt=attempt)
            _after_end(job, handler)
            return "cancelled"
        if handler.retryable(job, exc) and attempt < job.max_attempts and not job.cancel_requested:
            custom = handler.retry_delay(attempt)
            delay = backoff(attempt) if custom is None else custom
            fields = {**base, "state": State.PENDING, "run_after": now + timedelta(seconds=delay)}
            Job.objects.filter(pk=job.pk).update(**fields)
            _set(job, **fields)
            handler.on_retry(job, message, delay)
            _event(job, "JobRetryScheduled", attempt=attempt, error=message, retry_in_seconds=round(delay, 3))
            _send(job.pk, delay)
            return "retry-scheduled"
        fields = {**base, "state": State.FAILED, "finished_at": now}
        Job.objects.filter(pk=job.pk).update(**fields)
        _set(job, **fields)
        handler.on_failed(job, message)
        _event(job, "JobFailed", attempt=attempt, error=message)
        _after_end(job, handler)
        return "failed"


def _after_end(job: Job, handler: JobHandler) -> None:
    """In the transaction that ended `job`: queue what its end lets run, and tell an idle group.

    A free slot under the cap goes to the next pending job of the same kind and key (any group);
    the end of a batch lets the group's next batch start on every key.
    """
    cap = handler.cap()
    if cap is not None:
        dispatch(kinds=[job.kind], key=job.concurrency_key, limit=max(1, cap))
    if job.group:
        # Two jobs of a group ending at once would each see the other still running and neither
        # would call the group idle: serialise the check per group (until commit), so the later
        # one sees the earlier one's end.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"jobs.group:{job.group_type}:{job.group_id}"]
            )
        same_batch_open = Job.objects.filter(
            group_type=job.group_type, group_id=job.group_id, batch=job.batch, state__in=Job.OPEN
        ).exists()
        if cap is None or not same_batch_open:
            dispatch(group=job.group)
        if group_is_idle(job.group):
            handler.on_group_idle(*job.group)


def group_is_idle(group: tuple[str, str]) -> bool:
    """Nothing in the group is queued or running, and no pending job could ever be queued.

    Pending jobs behind a failed earlier batch (kinds that halt) never will; held ones wait for a release.
    """
    rows = Job.objects.filter(group_type=group[0], group_id=str(group[1]))
    if rows.filter(state__in=[State.QUEUED, State.RUNNING]).exists():
        return False
    pending = rows.filter(state=State.PENDING)
    if pending.filter(held=True).exists():
        return False
    failed_batch = rows.filter(state=State.FAILED).aggregate(low=Min("batch"))["low"]
    if failed_batch is None:
        return not pending.exists()
    if pending.filter(batch__lte=failed_batch).exists():
        return False
    kinds = set(pending.values_list("kind", flat=True).distinct())
    return all(handler_for(kind).halt_after_failed_batch for kind in kinds)


# --- the sweeper ------------------------------------------------------------------------------------


def job_sweep() -> dict[str, int]:
    """Resume work whose worker died or whose message was lost. Safe to run any time, anywhere.

    - running past its lease: the worker died → pending again and sent (or failed when the job
      has used up its attempts);
    - queued for longer than JOBS_QUEUED_GRACE_SECONDS: the message may be lost → sent again
      (claims make a duplicate harmless);
    - pending and allowed to run: queued (retries whose timed message was lost, capped jobs).
    """
    now = timezone.now()
    counts = {"expired": 0, "retried": 0, "failed": 0, "resent": 0, "queued": 0}
    expired = Job.objects.filter(state=State.RUNNING, lease_expires_at__lt=now).order_by("id")
    for job in list(expired[:1000]):
        handler = handler_for(job.kind)
        with transaction.atomic():
            handler.lock(job)
            current = Job.objects.get(pk=job.pk)
            lease = current.lease_expires_at
            if current.state != State.RUNNING or current.attempts != job.attempts or (lease and lease >= now):
                continue
            counts["expired"] += 1
            if current.attempts >= current.max_attempts:
                _finish(
                    current,
                    handler,
                    State.FAILED,
                    error=f"The worker stopped responding during {current.attempts} attempts; giving up.",
                )
                handler.on_failed(current, "The worker running it died.")
                _event(current, "JobFailed", attempt=current.attempts, error="worker lost")
                _after_end(current, handler)
                counts["failed"] += 1
                continue
            fields = {
                "state": State.PENDING,
                "lease_expires_at": None,
                "run_after": None,
                "error": f"Worker {current.worker} stopped responding (attempt {current.attempts}); retrying.",
                "updated_at": now,
            }
            Job.objects.filter(pk=current.pk, state=State.RUNNING, attempts=current.attempts).update(**fields)
            _set(current, **fields)
            handler.on_lost(current)
            _event(current, "JobWorkerLost", attempt=current.attempts, worker=current.worker)
            dispatch(group=current.group, kinds=[current.kind])
            counts["retried"] += 1
    grace = now - timedelta(seconds=float(settings.JOBS_QUEUED_GRACE_SECONDS))
    with transaction.atomic():
        stale = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(state=State.QUEUED, queued_at__lt=grace)
            .values_list("pk", flat=True)[:1000]
        )
        Job.objects.filter(pk__in=stale, state=State.QUEUED).update(queued_at=now)
        for job_id in stale:
            _send(job_id)
    counts["resent"] = len(stale)
    counts["queued"] = len(dispatch())
    return counts


# --- reads and operator actions ----------------------------------------------------------------------


def job_get(job_id: Any) -> Job:
    """The job, or NotFound (a malformed id is not found either)."""
    try:
        return Job.objects.get(pk=int(job_id))
    except (Job.DoesNotExist, ValueError, TypeError, OverflowError):
        raise NotFound("No such job.") from None


def job_requeue(job: Job, *, extra_attempts: int) -> None:
    """Make a failed, cancelled, waiting or abandoned job pending again with `extra_attempts` more
    attempts, and queue it (the caller audits and holds the locks).

    The attempt counter is never reset: it is the fencing token, and a worker that was only
    presumed dead must still find its attempt stale when it comes back.
    """
    now = timezone.now()
    fields: dict[str, Any] = {
        "state": State.PENDING,
        "max_attempts": job.attempts + max(1, extra_attempts),
        "run_after": None,
        "lease_expires_at": None,
        "finished_at": None,
        "cancel_requested": False,
        "updated_at": now,
    }
    Job.objects.filter(pk=job.pk).update(**fields)
    _set(job, **fields)
    dispatch(group=job.group, kinds=[job.kind])


def jobs_cancel_open(
    *,
    group: tuple[str, Any],
    reason: str,
    kinds: Iterable[str] | None = None,
    states: Iterable[str] = (State.PENDING, State.QUEUED),
) -> int:
    """Cancel the group's jobs that have not started (the caller records why); returns how many."""
    now = timezone.now()
    rows = Job.objects.filter(group_type=group[0], group_id=str(group[1]), state__in=list(states))
    if kinds is not None:
        rows = rows.filter(kind__in=list(kinds))
    return rows.update(state=State.CANCELLED, finished_at=now, error=reason, updated_at=now)


def jobs_release(*, group: tuple[str, Any]) -> list[int]:
    """Let the group's held jobs run (e.g. after approval); returns the ids queued now."""
    Job.objects.filter(group_type=group[0], group_id=str(group[1]), held=True).update(
        held=False, updated_at=timezone.now()
    )
    return dispatch(group=(group[0], str(group[1])))


def _operator_job(job_id: Any) -> tuple[Job, JobHandler]:
    job = job_get(job_id)
    handler = handler_for(job.kind)
    if not getattr(handler, "operator_actions", True):
        raise Conflict(f"Jobs of kind {job.kind} are managed from their own screen.")
    return job, handler


def job_cancel(*, job_id: Any, actor: Actor, request: HttpRequest | None = None) -> Job:
    """Cancel a job that has not started; ask a running one to stop at its next safe point."""
    job, handler = _operator_job(job_id)
    label = actor_label(actor)
    with transaction.atomic():
        handler.lock(job)
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.state in (State.PENDING, State.QUEUED):
            _finish(job, handler, State.CANCELLED, error=f"Cancelled by {label}.")
            handler.on_cancelled(job, job.error)
            _event(job, "JobCancelled", by=label)
            _after_end(job, handler)
            summary = f"Cancelled job {job.kind} #{job.pk}"
        elif job.state == State.RUNNING:
            if job.cancel_requested:
                raise Conflict("Cancellation was already requested; the job stops at its next safe point.")
            Job.objects.filter(pk=job.pk).update(cancel_requested=True, updated_at=timezone.now())
            job.cancel_requested = True
            _event(job, "JobCancelRequested", by=label)
            summary = f"Asked running job {job.kind} #{job.pk} to stop"
        else:
            raise Conflict(f"A {job.get_state_display().lower()} job cannot be cancelled.")
        audit_record(
            actor=actor,
            action=AuditAction.JOB_CANCEL,
            target_type="job",
            target_id=job.pk,
            summary=summary,
            request=request,
            details={"kind": job.kind, "state": job.state},
        )
    return job


def job_retry(*, job_id: Any, actor: Actor, request: HttpRequest | None = None) -> Job:
    """Run a failed or cancelled job again with a fresh attempt budget (or a waiting one now)."""
    job, handler = _operator_job(job_id)
    with transaction.atomic():
        handler.lock(job)
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.state in (State.SUCCEEDED, State.SKIPPED):
            raise Conflict(f"A {job.get_state_display().lower()} job has nothing left to retry.")
        if job.state in (State.RUNNING, State.QUEUED):
            raise Conflict("A worker has this job right now; retry it once it finishes or stalls.")
        job_requeue(job, extra_attempts=handler.attempts_allowed())
        _event(job, "JobRetried", by=actor_label(actor))
        audit_record(
            actor=actor,
            action=AuditAction.JOB_RETRY,
            target_type="job",
            target_id=job.pk,
            summary=f"Retried job {job.kind} #{job.pk}",
            request=request,
            details={"kind": job.kind},
        )
    return job


# --- running in this process ---------------------------------------------------------------------------


def jobs_work_inline(*, group: tuple[str, Any], timeout: float = 120.0) -> None:
    """Run the group's jobs in this process until none can progress (commands with no worker, tests,
    benchmarks). The same claims and records as a worker, so a worker joining in is harmless."""
    group = (group[0], str(group[1]))
    deadline = time.monotonic() + timeout
    while True:
        now = timezone.now()
        rows = Job.objects.filter(group_type=group[0], group_id=group[1])
        runnable = [
            c[0]
            for c in _batch_gate(
                list(
                    rows.filter(state__in=[State.PENDING, State.QUEUED], held=False)
                    .filter(_due(now))
                    .order_by("batch", "id")
                    .values_list("id", "kind", "concurrency_key", "group_type", "group_id", "batch")
                )
            )
        ]
        for job_id in runnable:
            job_execute(job_id=job_id, heartbeat=False)
        if runnable:
            continue
        if group_is_idle(group):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"Jobs of {group[0]} {group[1]} did not settle within {timeout:g} s.")
        if rows.filter(state=State.RUNNING, lease_expires_at__lt=now).exists():
            job_sweep()  # a worker died holding one of them
        waits = rows.filter(state=State.PENDING, run_after__gt=now).aggregate(first=Min("run_after"))["first"]
        time.sleep(min(0.5, max(0.01, (waits - now).total_seconds())) if waits else 0.05)
