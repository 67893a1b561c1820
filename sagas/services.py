"""The saga orchestrator: every state change of a saga or a step happens here, on the job engine.

A saga is an ordered list of steps (sagas/registry.py); each step's action runs as one job of
kind `saga.step` and, when the saga has to undo it, its compensation as one job of kind
`saga.compensate`. The engine (jobs/services.py) claims, leases, heartbeats, retries with
backoff and sweeps them; this module decides what runs next and keeps the saga's own state:

- starting a saga creates its step rows and the first step's job;
- a step that succeeds records its output and returns the next step's job, which the same
  worker runs at once (the engine's chaining) — the transaction that records a step also
  claims the next one;
- a step that fails for good (out of attempts, a PermanentStepError, its worker died once too
  often) starts compensation: pending step jobs are cancelled and the newest step that may have
  had effects is undone first, then the one before it, until none is left (`compensated`); a
  compensation that keeps failing leaves the saga `failed` for an operator;
- a compensation never races a live step: it waits (Defer) while that step's lease is alive.

Every hook runs inside the engine's transaction after `lock` took the saga row, and every
transition is appended to the control-plane log (aggregate "saga") in that transaction.

Why one module: starting, the two job kinds and the operator actions all move the same saga
and step states; splitting them would hide which transitions can race.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import SYSTEM, Actor, SystemActor, actor_label, actor_user
from core.errors import Conflict
from events.services import control_event_append
from jobs.models import Job
from jobs.registry import Defer, JobContext, JobHandler, Refuse, register
from jobs.services import job_create, job_requeue, jobs_cancel_open, jobs_work_inline
from sagas.models import Saga, SagaState, SagaStep, StepState
from sagas.registry import StepContext, saga_definition

logger = logging.getLogger(__name__)

STEP = "saga.step"
COMPENSATE = "saga.compensate"


# --- event log ----------------------------------------------------------------------------------


def _record(saga: Saga, event_type: str, **data: Any) -> None:
    """Append one saga transition to the control-plane event log (same transaction)."""
    control_event_append(
        aggregate_type="saga",
        aggregate_id=str(saga.id),
        event_type=event_type,
        data={"saga_type": saga.saga_type, "state": saga.state, **data},
        metadata={"saga_type": saga.saga_type},
        correlation_id=saga.correlation_id,
        tenant_id=saga.tenant_id,
    )


def public_input(data: dict[str, Any]) -> dict[str, Any]:
    """The input without secrets, for the event log and the monitor."""
    return {k: v for k, v in data.items() if "password" not in k and "secret" not in k and k != "_fault"}


# --- starting -----------------------------------------------------------------------------------


def saga_start(
    *,
    saga_type: str,
    input: dict[str, Any],
    tenant_id: Any = None,
    tenant_label: str = "",
    idempotency_key: str | None = None,
    actor: Actor = SYSTEM,
    correlation_id: Any = None,
) -> Saga:
    """Create a saga and its steps and queue its first step. Same idempotency key → the same saga."""
    definition = saga_definition(saga_type)
    if idempotency_key:
        existing = Saga.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    now = timezone.now()
    try:
        with transaction.atomic():
            saga = Saga.objects.create(
                saga_type=saga_type,
                input=input,
                tenant_id=tenant_id,
                tenant_label=tenant_label,
                idempotency_key=idempotency_key,
                requested_by=actor_user(actor),
                requested_by_label=actor_label(actor),
                created_at=now,
                updated_at=now,
                **({"correlation_id": correlation_id} if correlation_id else {}),
            )
            steps = SagaStep.objects.bulk_create(
                SagaStep(saga=saga, index=i, name=s.name) for i, s in enumerate(definition.steps)
            )
            _record(saga, "SagaStarted", input=public_input(input), steps=[s.name for s in definition.steps])
            _schedule_step(saga, steps[0])
    except IntegrityError:
        if idempotency_key:
            existing = Saga.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        raise
    return saga


def _payload(saga: Saga, step: SagaStep) -> dict[str, Any]:
    payload: dict[str, Any] = {"saga_id": str(saga.id), "step_id": step.pk, "step": step.name}
    if "_fault" in saga.input:  # the crash tests' request (tests/support/faults.py)
        payload["_fault"] = saga.input["_fault"]
    return payload


def _requester(saga: Saga) -> Actor:
    """Who the saga's jobs are done for: its requester (an operator, or a named part of the system)."""
    return saga.requested_by or SystemActor(saga.requested_by_label or SYSTEM.label)


def _schedule_step(saga: Saga, step: SagaStep, *, send: bool = True) -> Job:
    max_attempts = saga_definition(saga.saga_type).step(step.name).max_attempts or settings.SAGA_MAX_ATTEMPTS
    job = job_create(
        kind=STEP,
        payload=_payload(saga, step),
        group=("saga", saga.id),
        actor=_requester(saga),
        max_attempts=max_attempts,
        correlation_id=saga.correlation_id,
        send=send,
    )
    SagaStep.objects.filter(pk=step.pk).update(job=job)
    step.job = job
    return job


# --- shared by both handlers ----------------------------------------------------------------------


def _locked(saga_id: Any) -> Saga:
    return Saga.objects.select_for_update().get(id=saga_id)


def _touch(saga: Saga, **fields: Any) -> None:
    fields["updated_at"] = timezone.now()
    for key, value in fields.items():
        setattr(saga, key, value)
    Saga.objects.filter(id=saga.id).update(**fields)


def _context(saga: Saga, step: SagaStep, attempt: int) -> StepContext:
    return StepContext(
        saga_id=saga.id,
        saga_type=saga.saga_type,
        step_name=step.name,
        attempt=attempt,
        input=dict(saga.input),
        context=dict(saga.context),
        tenant_id=saga.tenant_id,
    )


def _begin_compensation(saga: Saga, reason: str) -> None:
    """Caller holds the saga lock. Steps not started are abandoned; a live one is undone once it lets go."""
    _touch(saga, state=SagaState.COMPENSATING, error=reason)
    _record(saga, "SagaCompensating", reason=reason)
    jobs_cancel_open(group=("saga", saga.id), kinds=[STEP], reason="The saga is compensating.")
    _schedule_compensation(saga)


_NEEDS_UNDO = (StepState.COMPLETED, StepState.FAILED, StepState.RUNNING, StepState.COMPENSATING)


def _schedule_compensation(saga: Saga, *, send: bool = True) -> Job | None:
    """Queue the undo of the newest step that may have had effects, or finish the compensation."""
    # A pending step that already had an attempt may have left partial effects too.
    target = (
        saga.steps.select_related("compensation_job")
        .filter(Q(state__in=_NEEDS_UNDO) | Q(state=StepState.PENDING, job__attempts__gt=0))
        .order_by("-index")
        .first()
    )
    if target is None:
        _touch(saga, state=SagaState.COMPENSATED, finished_at=timezone.now())
        _record(saga, "SagaCompensated", reason=saga.error)
        return None
    if target.compensation_job is not None and target.compensation_job.is_open:
        return None  # already on its way
    job = job_create(
        kind=COMPENSATE,
        payload=_payload(saga, target),
        group=("saga", saga.id),
        actor=_requester(saga),
        max_attempts=settings.SAGA_MAX_COMPENSATE_ATTEMPTS,
        correlation_id=saga.correlation_id,
        send=send,
    )
    SagaStep.objects.filter(pk=target.pk).update(compensation_job=job)
    return job


class _SagaJob(JobHandler):
    record_events = False  # the saga's own events say more (SagaStepStarted, SagaCompensated, …)
    operator_actions = False  # retried, cancelled and compensated from the saga monitor

    def lease(self) -> float:
        return float(settings.SAGA_STEP_LEASE_SECONDS)

    def lock(self, job: Job) -> None:
        _locked(job.payload["saga_id"])

    @staticmethod
    def _rows(job: Job) -> tuple[Saga, SagaStep]:
        return Saga.objects.get(id=job.payload["saga_id"]), SagaStep.objects.get(pk=job.payload["step_id"])


# --- running steps ---------------------------------------------------------------------------------


@register
class StepJob(_SagaJob):
    """Runs one step's action."""

    kind = STEP
    title = "Saga step"

    def admit(self, job: Job) -> Refuse | None:
        saga, step = self._rows(job)
        if saga.state not in (SagaState.STARTED, SagaState.RUNNING):
            return Refuse(f"The saga is {saga.get_state_display().lower()}.")
        if saga.cancel_requested_at:
            _begin_compensation(saga, saga.error or "Cancelled by an operator.")
            return Refuse("The saga was cancelled.")
        if saga.steps.filter(index__lt=step.index).exclude(state=StepState.COMPLETED).exists():
            return Refuse("An earlier step has not completed.")
        return None

    def on_started(self, job: Job, attempt: int) -> None:
        saga, step = self._rows(job)
        if saga.state == SagaState.STARTED:
            _touch(saga, state=SagaState.RUNNING)
            _record(saga, "SagaRunning")
        else:
            _touch(saga)
        SagaStep.objects.filter(pk=step.pk).update(
            state=StepState.RUNNING, started_at=step.started_at or timezone.now(), finished_at=None
        )
        _record(saga, "SagaStepStarted", step=step.name, index=step.index, attempt=attempt)

    def run(self, ctx: JobContext) -> dict[str, Any]:
        saga, step = self._rows(ctx.job)
        action = saga_definition(saga.saga_type).step(step.name).action
        return action(_context(saga, step, ctx.attempt)) or {}

    def retryable(self, job: Job, exc: BaseException) -> bool:
        saga = Saga.objects.get(id=job.payload["saga_id"])
        return super().retryable(job, exc) and saga.state == SagaState.RUNNING and not saga.cancel_requested_at

    def on_succeeded(self, job: Job, result: dict[str, Any]) -> Job | None:
        saga, step = self._rows(job)
        now = timezone.now()
        SagaStep.objects.filter(pk=step.pk).update(state=StepState.COMPLETED, finished_at=now, output=result, error="")
        changes: dict[str, Any] = {"context": {**saga.context, **result}}
        if result.get("tenant_id") and not saga.tenant_id:
            changes["tenant_id"] = result["tenant_id"]
        _touch(saga, **changes)
        elapsed = (now - step.started_at).total_seconds() if step.started_at else None
        _record(saga, "SagaStepCompleted", step=step.name, index=step.index, attempt=job.attempts, seconds=elapsed)
        if saga.state == SagaState.COMPENSATING:
            _schedule_compensation(saga)
            return None
        if saga.cancel_requested_at:
            _begin_compensation(saga, saga.error or "Cancelled by an operator.")
            return None
        following = saga.steps.filter(index__gt=step.index).order_by("index").first()
        if following is not None:
            return _schedule_step(saga, following, send=False)  # this worker runs it next
        _touch(saga, state=SagaState.COMPLETED, finished_at=now, error="")
        _record(saga, "SagaCompleted", seconds=(now - saga.created_at).total_seconds())
        return None

    def on_retry(self, job: Job, error: str, delay: float) -> None:
        saga, step = self._rows(job)
        SagaStep.objects.filter(pk=step.pk).update(state=StepState.PENDING, error=error.splitlines()[0])
        _touch(saga)
        _record(
            saga, "SagaStepRetryScheduled", step=step.name, attempt=job.attempts, error=error, retry_in_seconds=delay
        )

    def on_lost(self, job: Job) -> None:
        saga, step = self._rows(job)
        SagaStep.objects.filter(pk=step.pk).update(state=StepState.PENDING, error="The worker running it died.")
        _touch(saga)
        _record(saga, "SagaStepLeaseExpired", step=step.name, attempt=job.attempts)

    def on_failed(self, job: Job, error: str) -> None:
        saga, step = self._rows(job)
        message = error.splitlines()[0] if error else "It failed."
        SagaStep.objects.filter(pk=step.pk).update(state=StepState.FAILED, finished_at=timezone.now(), error=message)
        _record(saga, "SagaStepFailed", step=step.name, attempt=job.attempts, error=error)
        # Before its last attempt, a step only stops for an error that retrying cannot fix.
        if job.attempts < 2 or job.attempts < job.max_attempts:
            reason = f"Step “{step.name}” failed: {message}"
        else:
            reason = f"Step “{step.name}” failed after {job.attempts} attempts: {message}"
        if saga.state == SagaState.COMPENSATING:
            _schedule_compensation(saga)
        else:
            _begin_compensation(saga, reason)


# --- compensating ------------------------------------------------------------------------------------


@register
class CompensationJob(_SagaJob):
    """Undoes one step (newest first)."""

    kind = COMPENSATE
    title = "Saga compensation"

    def attempts_allowed(self) -> int:
        return int(settings.SAGA_MAX_COMPENSATE_ATTEMPTS)

    def admit(self, job: Job) -> Refuse | Defer | None:
        saga, step = self._rows(job)
        if saga.state != SagaState.COMPENSATING:
            return Refuse(f"The saga is {saga.get_state_display().lower()}.")
        action = step.job
        now = timezone.now()
        lease = action.lease_expires_at if action is not None and action.state == Job.State.RUNNING else None
        if lease is not None and lease > now:
            # A live worker is still inside this step: undoing it now could race its side effects.
            return Defer((lease - now).total_seconds() + 0.1)
        return None

    def on_started(self, job: Job, attempt: int) -> None:
        saga, step = self._rows(job)
        SagaStep.objects.filter(pk=step.pk).update(state=StepState.COMPENSATING)
        _touch(saga)
        _record(saga, "SagaStepCompensating", step=step.name, attempt=attempt)

    def run(self, ctx: JobContext) -> dict[str, Any]:
        saga, step = self._rows(ctx.job)
        compensate = saga_definition(saga.saga_type).step(step.name).compensate
        if compensate is not None:
            compensate(_context(saga, step, ctx.attempt))
        return {}

    def on_succeeded(self, job: Job, result: dict[str, Any]) -> Job | None:
        saga, step = self._rows(job)
        SagaStep.objects.filter(pk=step.pk).update(
            state=StepState.COMPENSATED, compensated_at=timezone.now(), compensation_error=""
        )
        _touch(saga)
        _record(saga, "SagaStepCompensated", step=step.name, attempt=job.attempts)
        return _schedule_compensation(saga, send=False)  # the step before it, by this worker

    def on_retry(self, job: Job, error: str, delay: float) -> None:
        saga, step = self._rows(job)
        SagaStep.objects.filter(pk=step.pk).update(state=StepState.FAILED, compensation_error=error)
        _touch(saga)
        _record(saga, "SagaCompensationRetryScheduled", step=step.name, attempt=job.attempts, error=error)

    def on_failed(self, job: Job, error: str) -> None:
        saga, step = self._rows(job)
        SagaStep.objects.filter(pk=step.pk).update(state=StepState.FAILED, compensation_error=error)
        reason = f"Compensating step “{step.name}” failed after {job.attempts} attempts: {error}"
        _touch(saga, state=SagaState.FAILED, finished_at=timezone.now(), error=f"{saga.error}\n{reason}".strip())
        _record(saga, "SagaFailed", step=step.name, error=error)


# --- operator actions -----------------------------------------------------------------------------------


def _audit(*, actor: Actor, action: AuditAction, saga: Saga, summary: str, request: HttpRequest | None) -> None:
    audit_record(
        actor=actor,
        action=action,
        target_type="saga",
        target_id=saga.id,
        summary=summary,
        request=request,
        details={"saga_type": saga.saga_type, "tenant": saga.tenant_label, "state": saga.state},
    )


def saga_retry(*, saga_id: Any, actor: Actor, request: HttpRequest | None = None) -> Saga:
    """Run the stuck work again now with a fresh attempt budget.

    A running saga: its current step (waiting for a retry, or held by a dead worker) is queued
    again. A failed saga (compensation gave up): compensation resumes.
    """
    with transaction.atomic():
        saga = _locked(saga_id)
        label = actor_label(actor)
        if saga.state == SagaState.FAILED:
            failed = Job.objects.filter(compensated_saga_step__saga=saga, state=Job.State.FAILED)
            for comp in failed:
                job_requeue(comp, extra_attempts=settings.SAGA_MAX_COMPENSATE_ATTEMPTS)
            _touch(saga, state=SagaState.COMPENSATING, finished_at=None)
            _record(saga, "SagaRetried", by=label, resume="compensation")
            _schedule_compensation(saga)
        elif saga.state in (SagaState.STARTED, SagaState.RUNNING):
            step = saga.steps.select_related("job").exclude(state=StepState.COMPLETED).order_by("index").first()
            if step is None:
                raise Conflict("This saga has no step left to retry.")
            job = step.job
            if job is not None and job.state == Job.State.QUEUED:
                raise Conflict("This step is already queued for a worker; it runs as soon as one is free.")
            if job is not None and job.state == Job.State.RUNNING:
                if job.lease_expires_at is None or job.lease_expires_at > timezone.now():
                    raise Conflict("A worker is running this step right now; retry it once it finishes or stalls.")
            if job is None:
                _schedule_step(saga, step)
            else:
                job_requeue(job, extra_attempts=settings.SAGA_MAX_ATTEMPTS)
            SagaStep.objects.filter(pk=step.pk).update(state=StepState.PENDING)
            _touch(saga)
            _record(saga, "SagaRetried", by=label, step=step.name)
        else:
            raise Conflict(f"A {saga.get_state_display().lower()} saga cannot be retried.")
        _audit(
            actor=actor,
            action=AuditAction.SAGA_RETRY,
            saga=saga,
            summary=f"Retried saga {saga.saga_type}",
            request=request,
        )
        return saga


def saga_cancel(*, saga_id: Any, actor: Actor, request: HttpRequest | None = None) -> Saga:
    """Stop at the next step boundary and undo what was done (the step in flight may finish first)."""
    with transaction.atomic():
        saga = _locked(saga_id)
        if saga.state not in (SagaState.STARTED, SagaState.RUNNING):
            raise Conflict(f"A {saga.get_state_display().lower()} saga cannot be cancelled.")
        if saga.cancel_requested_at:
            raise Conflict("Cancellation was already requested.")
        label = actor_label(actor)
        reason = f"Cancelled by {label}."
        _touch(saga, cancel_requested_at=timezone.now(), error=reason)
        _record(saga, "SagaCancelRequested", by=label)
        if not Job.objects.filter(
            group_type="saga", group_id=str(saga.id), kind=STEP, state=Job.State.RUNNING
        ).exists():
            _begin_compensation(saga, reason)
        _audit(
            actor=actor,
            action=AuditAction.SAGA_CANCEL,
            saga=saga,
            summary=f"Cancelled saga {saga.saga_type}",
            request=request,
        )
        return saga


def saga_compensate(*, saga_id: Any, actor: Actor, request: HttpRequest | None = None) -> Saga:
    """Give up going forward now and undo every step that ran (waits only for a live step to end)."""
    with transaction.atomic():
        saga = _locked(saga_id)
        if saga.state not in (SagaState.STARTED, SagaState.RUNNING):
            raise Conflict(f"A {saga.get_state_display().lower()} saga cannot be compensated.")
        # Steps waiting for a retry are abandoned; a live step is undone once its worker lets go.
        _begin_compensation(saga, f"Compensation requested by {actor_label(actor)}.")
        _audit(
            actor=actor,
            action=AuditAction.SAGA_COMPENSATE,
            saga=saga,
            summary=f"Compensated saga {saga.saga_type}",
            request=request,
        )
        return saga


def saga_run_inline(*, saga_id: Any, timeout: float = 120.0) -> Saga:
    """Drive the saga's jobs in this process until it settles (commands without a worker, tests, benches)."""
    jobs_work_inline(group=("saga", saga_id), timeout=timeout)
    return Saga.objects.get(id=saga_id)
