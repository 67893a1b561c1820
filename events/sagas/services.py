"""The saga engine: every state change of a saga or a step happens here.

Concurrency rules (why this is safe with several workers, redeliveries and a
sweeper):
- Every transition runs in a transaction that first locks the saga row
  (SELECT … FOR UPDATE), so two workers never decide about one saga at once.
- A worker *claims* a step with a conditional UPDATE (state = pending → running)
  and checks the row count; the attempt number it got is its fencing token.
  A worker that finishes after the sweeper handed its step to someone else
  finds its token stale and records nothing.
- Actions and compensations run outside those transactions (they do DDL on
  other connections) and are idempotent, so running one twice is harmless.
- Tasks take ids only and are sent in transaction.on_commit; a lost message
  (worker killed, broker restart) is found again by the sweeper.
- Every transition is appended to the control-plane event log in the same
  transaction (aggregate "saga").
"""

from __future__ import annotations

import logging
import os
import random
import traceback
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from events.sagas.models import ACTIVE_SAGA_STATES, Saga, SagaState, SagaStep, StepState
from events.sagas.registry import PermanentStepError, SagaDefinition, StepContext, saga_definition

logger = logging.getLogger(__name__)


class SagaActionError(Exception):
    """An operator action that does not apply to the saga in its current state (one sentence)."""


# --- configuration ------------------------------------------------------------


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def _lease() -> timedelta:
    return timedelta(seconds=float(_setting("SAGA_STEP_LEASE_SECONDS", 120)))


def _grace() -> timedelta:
    return timedelta(seconds=float(_setting("SAGA_SWEEP_GRACE_SECONDS", 30)))


def _backoff(attempt: int) -> float:
    """Exponential backoff with a little jitter: base, 2·base, 4·base … capped."""
    base = float(_setting("SAGA_RETRY_BACKOFF_SECONDS", 2.0))
    cap = float(_setting("SAGA_RETRY_BACKOFF_MAX_SECONDS", 300.0))
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay * (1 + random.uniform(0, 0.1)) if delay else 0.0


def _max_attempts(definition_value: int | None) -> int:
    return definition_value or int(_setting("SAGA_MAX_ATTEMPTS", 3))


def _max_compensate_attempts() -> int:
    return int(_setting("SAGA_MAX_COMPENSATE_ATTEMPTS", 5))


# --- event log ----------------------------------------------------------------


def _record(saga: Saga, event_type: str, **data: Any) -> None:
    """Append one saga transition to the control-plane event log (same transaction)."""
    try:
        from events.services import control_event_append
    except ImportError:  # the event store is being built alongside; until then the step rows are the record
        logger.debug("saga %s: %s", saga.id, event_type)
        return

    payload = {"saga_type": saga.saga_type, "state": saga.state, **data}
    control_event_append(
        aggregate_type="saga",
        aggregate_id=saga.id,
        event_type=event_type,
        data=payload,
        metadata={"saga_type": saga.saga_type},
        correlation_id=saga.correlation_id,
        tenant_id=saga.tenant_id,
    )


# --- dispatch -----------------------------------------------------------------


def _enqueue_step(step_id: int, countdown: float = 0) -> None:
    from events.sagas import tasks

    transaction.on_commit(
        lambda: tasks.saga_step_run.apply_async(args=[step_id], countdown=countdown or None), robust=True
    )


def _enqueue_compensation(saga_id: Any, countdown: float = 0) -> None:
    from events.sagas import tasks

    transaction.on_commit(
        lambda: tasks.saga_compensate.apply_async(args=[str(saga_id)], countdown=countdown or None), robust=True
    )


# --- fault injection (tests only) --------------------------------------------


def _fault(saga: Saga, step_name: str, point: str, attempt: int) -> None:
    """Crash or raise at a chosen point when SAGA_FAULT_INJECTION is on and the saga asks for it.

    input["_fault"] = {"step": name, "mode": "kill" | "raise" | "raise_once" | "kill_compensation"
                       | "raise_compensation"}.
    "kill" ends the worker process after the step's side effects happened but before they
    were recorded: the hardest case for resuming (the step must be idempotent).
    """
    if not _setting("SAGA_FAULT_INJECTION", False):
        return
    fault = (saga.input or {}).get("_fault") or {}
    if fault.get("step") != step_name:
        return
    mode = fault.get("mode")
    if point == "after_action" and mode == "kill" and attempt == 1:
        logger.warning("fault injection: killing the worker after step %s", step_name)
        os._exit(137)
    if point == "action" and (mode == "raise" or (mode == "raise_once" and attempt == 1)):
        raise RuntimeError(f"Injected fault in step {step_name} (attempt {attempt}).")
    if point == "after_compensate" and mode == "kill_compensation" and attempt == 1:
        logger.warning("fault injection: killing the worker after compensating %s", step_name)
        os._exit(137)
    if point == "compensate" and mode == "raise_compensation":
        raise RuntimeError(f"Injected fault compensating {step_name} (attempt {attempt}).")


# --- starting -----------------------------------------------------------------


def saga_start(
    *,
    saga_type: str,
    input: dict[str, Any],
    tenant_id: Any = None,
    tenant_label: str = "",
    idempotency_key: str | None = None,
    requested_by: Any = None,
    correlation_id: Any = None,
) -> Saga:
    """Create a saga and its steps and send its first step. Same idempotency key → the same saga."""
    definition = saga_definition(saga_type)
    if idempotency_key:
        existing = Saga.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    now = timezone.now()
    user = requested_by if getattr(requested_by, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            saga = Saga.objects.create(
                saga_type=saga_type,
                input=input,
                tenant_id=tenant_id,
                tenant_label=tenant_label,
                idempotency_key=idempotency_key,
                requested_by=user,
                requested_by_label=user.get_username() if user else (str(requested_by) if requested_by else "system"),
                created_at=now,
                updated_at=now,
                **({"correlation_id": correlation_id} if correlation_id else {}),
            )
            steps = SagaStep.objects.bulk_create(
                SagaStep(saga=saga, index=i, name=s.name, max_attempts=_max_attempts(s.max_attempts))
                for i, s in enumerate(definition.steps)
            )
            _record(saga, "SagaStarted", input=_public_input(input), steps=[s.name for s in definition.steps])
            _enqueue_step(steps[0].id)
    except IntegrityError:
        if idempotency_key:
            existing = Saga.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        raise
    return saga


def _public_input(data: dict[str, Any]) -> dict[str, Any]:
    """The input without secrets, for the event log."""
    return {k: v for k, v in data.items() if "password" not in k and "secret" not in k and k != "_fault"}


# --- running steps ------------------------------------------------------------


def _locked(saga_id: Any) -> Saga:
    return Saga.objects.select_for_update().get(id=saga_id)


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


def _touch(saga: Saga, **fields: Any) -> None:
    now = timezone.now()
    fields["updated_at"] = now
    for key, value in fields.items():
        setattr(saga, key, value)
    Saga.objects.filter(id=saga.id).update(**fields)


def saga_step_execute(*, step_id: int, chain: bool | None = None) -> str:
    """Run a step if it is this caller's to run, then (by default) the following steps in the same
    worker while they succeed. Returns what happened last (for logs and tests).

    Chaining saves a broker round trip per step, and the transaction that records a step as
    completed also claims the next one. It changes nothing about safety: each step is still
    claimed, leased and recorded on its own, and if this worker dies between steps the
    sweeper finds the next step running past its lease (or pending) and sends it again.
    """
    chain = _setting("SAGA_CHAIN_STEPS", True) if chain is None else chain
    result = _step_claim(step_id)
    while isinstance(result, tuple):
        result = _step_run(*result, chain=chain)
    return result


def _claim(saga: Saga, step: SagaStep, now) -> int | None:
    """Caller holds the saga lock and checked the step is pending and due. Returns the attempt."""
    claimed = SagaStep.objects.filter(id=step.id, state=StepState.PENDING, attempts=step.attempts).update(
        state=StepState.RUNNING,
        attempts=step.attempts + 1,
        lease_expires_at=now + _lease(),
        started_at=step.started_at or now,
        finished_at=None,
        next_attempt_at=None,
    )
    if claimed != 1:
        return None
    _record(saga, "SagaStepStarted", step=step.name, index=step.index, attempt=step.attempts + 1)
    return step.attempts + 1


def _step_claim(step_id: int) -> str | tuple[Saga, SagaStep, int]:
    with transaction.atomic():
        saga_id = SagaStep.objects.filter(id=step_id).values_list("saga_id", flat=True).first()
        if saga_id is None:
            return "missing"
        saga = _locked(saga_id)
        step = SagaStep.objects.get(id=step_id)
        if step.state == StepState.COMPLETED:
            return "already-completed"  # a redelivered message: the work was done and recorded
        if saga.state not in (SagaState.STARTED, SagaState.RUNNING):
            return f"saga-{saga.state}"
        if saga.cancel_requested_at:
            _begin_compensation(saga, saga.error or "Cancelled by an operator.")
            return "cancelled"
        if step.state != StepState.PENDING:
            return f"step-{step.state}"  # another worker holds it; the sweeper resumes it if that worker died
        now = timezone.now()
        if step.next_attempt_at and step.next_attempt_at > now:
            _enqueue_step(step.id, (step.next_attempt_at - now).total_seconds())
            return "not-due"
        if saga.steps.filter(index__lt=step.index).exclude(state=StepState.COMPLETED).exists():
            return "out-of-order"
        if saga.state == SagaState.STARTED:
            _touch(saga, state=SagaState.RUNNING)
            _record(saga, "SagaRunning")
        else:
            _touch(saga)
        attempt = _claim(saga, step, now)
        if attempt is None:
            transaction.set_rollback(True)
            return "lost-claim"
    return saga, step, attempt


def _step_run(saga: Saga, step: SagaStep, attempt: int, *, chain: bool) -> str | tuple[Saga, SagaStep, int]:
    definition = saga_definition(saga.saga_type)
    step_definition = definition.step(step.name)
    try:
        _fault(saga, step.name, "action", attempt)
        output = step_definition.action(_context(saga, step, attempt)) or {}
        _fault(saga, step.name, "after_action", attempt)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded and retried or compensated
        logger.warning("saga %s step %s attempt %s failed: %s", saga.id, step.name, attempt, exc)
        return _step_failed(step.id, attempt, exc)
    return _step_completed(step.id, attempt, output, definition, chain=chain)


def _error_text(exc: BaseException) -> str:
    message = str(exc) or exc.__class__.__name__
    if isinstance(exc, PermanentStepError):
        return message
    return f"{exc.__class__.__name__}: {message}"


def _step_completed(
    step_id: int, attempt: int, output: dict[str, Any], definition: SagaDefinition, *, chain: bool = False
) -> str | tuple[Saga, SagaStep, int]:
    with transaction.atomic():
        step = SagaStep.objects.get(id=step_id)
        saga = _locked(step.saga_id)
        now = timezone.now()
        done = SagaStep.objects.filter(id=step_id, state=StepState.RUNNING, attempts=attempt).update(
            state=StepState.COMPLETED, finished_at=now, lease_expires_at=None, output=output, error=""
        )
        if done != 1:
            return "stale"  # the sweeper gave this step to another worker meanwhile
        context = {**saga.context, **output}
        changes: dict[str, Any] = {"context": context}
        if output.get("tenant_id") and not saga.tenant_id:
            changes["tenant_id"] = output["tenant_id"]
        _touch(saga, **changes)
        elapsed = (now - step.started_at).total_seconds() if step.started_at else None
        _record(saga, "SagaStepCompleted", step=step.name, index=step.index, attempt=attempt, seconds=elapsed)
        if saga.state == SagaState.COMPENSATING:
            _enqueue_compensation(saga.id)
            return "completed-while-compensating"
        if saga.cancel_requested_at:
            _begin_compensation(saga, saga.error or "Cancelled by an operator.")
            return "completed-then-cancelled"
        following = saga.steps.filter(index__gt=step.index).order_by("index").first()
        if following is not None:
            due = following.next_attempt_at is None or following.next_attempt_at <= now
            if chain and following.state == StepState.PENDING and due:
                claimed = _claim(saga, following, now)  # the caller runs it once this commits
                if claimed is not None:
                    return saga, following, claimed
            _enqueue_step(following.id)
            return "completed"
        _touch(saga, state=SagaState.COMPLETED, finished_at=now, error="")
        _record(saga, "SagaCompleted", seconds=(now - saga.created_at).total_seconds())
        return "saga-completed"


def _step_failed(step_id: int, attempt: int, exc: BaseException) -> str:
    message = _error_text(exc)
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    with transaction.atomic():
        step = SagaStep.objects.get(id=step_id)
        saga = _locked(step.saga_id)
        if step.state != StepState.RUNNING or step.attempts != attempt:
            return "stale"
        now = timezone.now()
        retryable = not isinstance(exc, PermanentStepError) and saga.state == SagaState.RUNNING
        if retryable and attempt < step.max_attempts and not saga.cancel_requested_at:
            delay = _backoff(attempt)
            SagaStep.objects.filter(id=step_id).update(
                state=StepState.PENDING,
                lease_expires_at=None,
                next_attempt_at=now + timedelta(seconds=delay),
                error=message,
            )
            _touch(saga)
            _record(
                saga, "SagaStepRetryScheduled", step=step.name, attempt=attempt, error=detail, retry_in_seconds=delay
            )
            _enqueue_step(step_id, delay)
            return "retry-scheduled"
        SagaStep.objects.filter(id=step_id).update(
            state=StepState.FAILED, lease_expires_at=None, finished_at=now, error=message
        )
        _record(saga, "SagaStepFailed", step=step.name, attempt=attempt, error=detail)
        reason = (
            f"Step “{step.name}” failed: {message}"
            if isinstance(exc, PermanentStepError) or attempt == 1
            else f"Step “{step.name}” failed after {attempt} attempts: {message}"
        )
        if saga.state == SagaState.COMPENSATING:
            _enqueue_compensation(saga.id)
            return "failed-while-compensating"
        _begin_compensation(saga, reason)
        return "failed"


def _begin_compensation(saga: Saga, reason: str) -> None:
    """Caller holds the saga lock."""
    _touch(saga, state=SagaState.COMPENSATING, error=reason)
    _record(saga, "SagaCompensating", reason=reason)
    _enqueue_compensation(saga.id)


# --- compensating ---------------------------------------------------------------


_NEEDS_UNDO = (StepState.COMPLETED, StepState.FAILED, StepState.RUNNING, StepState.COMPENSATING)


def saga_compensate_next(*, saga_id: Any) -> str:
    """Undo the latest step that may have had effects; then send the next compensation."""
    with transaction.atomic():
        saga = _locked(saga_id)
        if saga.state != SagaState.COMPENSATING:
            return f"saga-{saga.state}"
        now = timezone.now()
        # A pending step that already had an attempt may have left partial effects too.
        target = (
            saga.steps.filter(Q(state__in=_NEEDS_UNDO) | Q(state=StepState.PENDING, attempts__gt=0))
            .order_by("-index")
            .first()
        )
        if target is None:
            _touch(saga, state=SagaState.COMPENSATED, finished_at=now)
            _record(saga, "SagaCompensated", reason=saga.error)
            return "saga-compensated"
        if target.state in (StepState.RUNNING, StepState.COMPENSATING) and (
            target.lease_expires_at and target.lease_expires_at > now
        ):
            # A live worker is still inside this step: undoing it now could race its side effects.
            _enqueue_compensation(saga.id, (target.lease_expires_at - now).total_seconds() + 0.1)
            return "waiting-for-step"
        if target.next_attempt_at and target.next_attempt_at > now and target.compensate_attempts:
            _enqueue_compensation(saga.id, (target.next_attempt_at - now).total_seconds())
            return "not-due"
        claimed = SagaStep.objects.filter(
            id=target.id, state=target.state, compensate_attempts=target.compensate_attempts
        ).update(
            state=StepState.COMPENSATING,
            compensate_attempts=target.compensate_attempts + 1,
            lease_expires_at=now + _lease(),
            next_attempt_at=None,
        )
        if claimed != 1:
            return "lost-claim"
        attempt = target.compensate_attempts + 1
        _touch(saga)
        _record(saga, "SagaStepCompensating", step=target.name, attempt=attempt)
    step_definition = saga_definition(saga.saga_type).step(target.name)
    try:
        _fault(saga, target.name, "compensate", attempt)
        if step_definition.compensate is not None:
            step_definition.compensate(_context(saga, target, attempt))
        _fault(saga, target.name, "after_compensate", attempt)
    except Exception as exc:  # noqa: BLE001
        logger.warning("saga %s compensating %s attempt %s failed: %s", saga.id, target.name, attempt, exc)
        return _compensation_failed(target.id, attempt, exc)
    with transaction.atomic():
        saga = _locked(saga_id)
        done = SagaStep.objects.filter(id=target.id, state=StepState.COMPENSATING, compensate_attempts=attempt).update(
            state=StepState.COMPENSATED, compensated_at=timezone.now(), lease_expires_at=None, compensation_error=""
        )
        if done != 1:
            return "stale"
        _touch(saga)
        _record(saga, "SagaStepCompensated", step=target.name, attempt=attempt)
        _enqueue_compensation(saga.id)
    return "step-compensated"


def _compensation_failed(step_id: int, attempt: int, exc: BaseException) -> str:
    message = _error_text(exc)
    with transaction.atomic():
        step = SagaStep.objects.get(id=step_id)
        saga = _locked(step.saga_id)
        if step.state != StepState.COMPENSATING or step.compensate_attempts != attempt:
            return "stale"
        now = timezone.now()
        if attempt < _max_compensate_attempts():
            delay = _backoff(attempt)
            SagaStep.objects.filter(id=step_id).update(
                state=StepState.FAILED,
                lease_expires_at=None,
                next_attempt_at=now + timedelta(seconds=delay),
                compensation_error=message,
            )
            _touch(saga)
            _record(saga, "SagaCompensationRetryScheduled", step=step.name, attempt=attempt, error=message)
            _enqueue_compensation(saga.id, delay)
            return "compensation-retry-scheduled"
        SagaStep.objects.filter(id=step_id).update(
            state=StepState.FAILED, lease_expires_at=None, compensation_error=message
        )
        reason = f"Compensating step “{step.name}” failed after {attempt} attempts: {message}"
        _touch(saga, state=SagaState.FAILED, finished_at=now, error=f"{saga.error}\n{reason}".strip())
        _record(saga, "SagaFailed", step=step.name, error=message)
        return "saga-failed"


# --- the sweeper ------------------------------------------------------------------


def saga_sweep() -> dict[str, int]:
    """Resume work whose worker died or whose message was lost. Safe to run any time, anywhere.

    - a step `running` past its lease: its worker died → back to pending (or failed when out
      of attempts) and sent again;
    - a running saga whose current step is pending and due but nobody touched the saga for
      the grace period: its message was lost → sent again (claims make duplicates harmless);
    - a compensating saga idle for the grace period → its compensation is sent again.
    """
    now = timezone.now()
    counts = {"expired": 0, "resent": 0, "compensations": 0}
    expired_ids = list(
        SagaStep.objects.filter(
            state=StepState.RUNNING, lease_expires_at__lt=now, saga__state=SagaState.RUNNING
        ).values_list("id", flat=True)
    )
    for step_id in expired_ids:
        with transaction.atomic():
            step = SagaStep.objects.get(id=step_id)
            saga = _locked(step.saga_id)
            step.refresh_from_db()
            if step.state != StepState.RUNNING or not step.lease_expires_at or step.lease_expires_at >= now:
                continue
            if saga.state != SagaState.RUNNING:
                continue
            counts["expired"] += 1
            if step.attempts >= step.max_attempts:
                SagaStep.objects.filter(id=step.id).update(
                    state=StepState.FAILED, lease_expires_at=None, finished_at=now, error="The worker running it died."
                )
                _record(saga, "SagaStepFailed", step=step.name, attempt=step.attempts, error="worker lost")
                _begin_compensation(
                    saga, f"Step “{step.name}” failed after {step.attempts} attempts: the worker running it died."
                )
                continue
            SagaStep.objects.filter(id=step.id, state=StepState.RUNNING, attempts=step.attempts).update(
                state=StepState.PENDING,
                lease_expires_at=None,
                next_attempt_at=None,
                error="The worker running it died.",
            )
            _touch(saga)
            _record(saga, "SagaStepLeaseExpired", step=step.name, attempt=step.attempts)
            _enqueue_step(step.id)
    idle_before = now - _grace()
    idle = Saga.objects.filter(state__in=ACTIVE_SAGA_STATES, updated_at__lt=idle_before)
    for saga in idle:
        if saga.state == SagaState.COMPENSATING:
            counts["compensations"] += 1
            with transaction.atomic():
                _enqueue_compensation(saga.id)
            continue
        step = (
            saga.steps.filter(state=StepState.PENDING)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=idle_before))
            .order_by("index")
            .first()
        )
        if step is not None and not saga.steps.filter(index__lt=step.index).exclude(state="completed").exists():
            counts["resent"] += 1
            with transaction.atomic():
                _enqueue_step(step.id)
    return counts


# --- operator actions -----------------------------------------------------------


def _audit(*, actor: Any, action: str, saga: Saga, summary: str, request: Any) -> None:

    audit_record(
        actor=actor,
        action=action,
        target_type="saga",
        target_id=saga.id,
        summary=summary,
        request=request,
        details={"saga_type": saga.saga_type, "tenant": saga.tenant_label, "state": saga.state},
    )


def saga_retry(*, saga_id: Any, actor: Any, request: Any = None) -> Saga:
    """Run the stuck work again now with a fresh attempt budget.

    A running saga: its current step (waiting for a retry, or held by a dead worker) is sent
    again. A failed saga (compensation gave up): compensation resumes.
    """
    with transaction.atomic():
        saga = _locked(saga_id)
        label = getattr(actor, "get_username", lambda: "system")()
        if saga.state == SagaState.FAILED:
            SagaStep.objects.filter(saga=saga, state=StepState.FAILED).update(
                compensate_attempts=0, next_attempt_at=None
            )
            _touch(saga, state=SagaState.COMPENSATING, finished_at=None)
            _record(saga, "SagaRetried", by=label, resume="compensation")
            _enqueue_compensation(saga.id)
        elif saga.state in (SagaState.STARTED, SagaState.RUNNING):
            step = saga.steps.exclude(state=StepState.COMPLETED).order_by("index").first()
            if step is None:
                raise SagaActionError("This saga has no step left to retry.")
            if step.state == StepState.RUNNING and step.lease_expires_at and step.lease_expires_at > timezone.now():
                raise SagaActionError("A worker is running this step right now; retry it once it finishes or stalls.")
            SagaStep.objects.filter(id=step.id).update(
                state=StepState.PENDING, attempts=0, next_attempt_at=None, lease_expires_at=None
            )
            _touch(saga)
            _record(saga, "SagaRetried", by=label, step=step.name)
            _enqueue_step(step.id)
        else:
            raise SagaActionError(f"A {saga.get_state_display().lower()} saga cannot be retried.")
        _audit(actor=actor, action=AuditAction.SAGA_RETRY, saga=saga, summary=f"Retried saga {saga.saga_type}", request=request)
        return saga


def saga_cancel(*, saga_id: Any, actor: Any, request: Any = None) -> Saga:
    """Stop at the next step boundary and undo what was done (the step in flight may finish first)."""
    with transaction.atomic():
        saga = _locked(saga_id)
        if saga.state not in (SagaState.STARTED, SagaState.RUNNING):
            raise SagaActionError(f"A {saga.get_state_display().lower()} saga cannot be cancelled.")
        if saga.cancel_requested_at:
            raise SagaActionError("Cancellation was already requested.")
        label = getattr(actor, "get_username", lambda: "system")()
        reason = f"Cancelled by {label}."
        _touch(saga, cancel_requested_at=timezone.now(), error=reason)
        _record(saga, "SagaCancelRequested", by=label)
        if not saga.steps.filter(state=StepState.RUNNING).exists():
            _begin_compensation(saga, reason)
        _audit(
            actor=actor, action=AuditAction.SAGA_CANCEL, saga=saga, summary=f"Cancelled saga {saga.saga_type}", request=request
        )
        return saga


def saga_compensate(*, saga_id: Any, actor: Any, request: Any = None) -> Saga:
    """Give up going forward now and undo every step that ran (waits only for a live step to end)."""
    with transaction.atomic():
        saga = _locked(saga_id)
        if saga.state not in (SagaState.STARTED, SagaState.RUNNING):
            raise SagaActionError(f"A {saga.get_state_display().lower()} saga cannot be compensated.")
        label = getattr(actor, "get_username", lambda: "system")()
        # Steps waiting for a retry are abandoned; a live step is undone once its worker lets go.
        _begin_compensation(saga, f"Compensation requested by {label}.")
        _audit(
            actor=actor,
            action=AuditAction.SAGA_COMPENSATE,
            saga=saga,
            summary=f"Compensated saga {saga.saga_type}",
            request=request,
        )
        return saga
