"""Evaluating controls (a job kind on the engine), recording results, and the Admin's changes.

- `evaluation_start(actor=…, control_keys=None)` creates a `compliance.evaluate` job (one open at a
  time). The beat task `compliance.evaluate_due` starts one for the controls whose frequency says
  they are due; "Evaluate now" (Operator+) starts one from the screens or the API.
- The job's `run` creates its Evaluation (one per job, so a retry finds it), evaluates each control
  that has no result in it yet — a worker that dies mid-way leaves the recorded results and the retry
  does the rest — then writes one FrameworkSnapshot per framework (readiness for the trend).
- Each Result is written with its control-plane event (`ComplianceResultRecorded`) in one
  transaction: evidence as canonical JSON with its SHA-256, so anyone can re-derive the hash.
- A check that raises is recorded `error` with its message; an inapplicable control is `na` with
  its justification; manual controls get no result (nothing in the system can prove them).
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from compliance import library, selectors
from compliance.checks import registry
from compliance.models import Attestation, Control, Evaluation, Framework, FrameworkSnapshot, Result
from core.actors import Actor, SystemActor, actor_label, actor_user
from core.errors import Conflict, InvalidInput, NotFound
from core.permissions import Role, check_role, operator_role
from events.services import control_event_append
from jobs.models import Job
from jobs.registry import JobContext, JobHandler, register
from jobs.services import job_create

EVALUATE = "compliance.evaluate"
SCHEDULE = SystemActor("compliance schedule")
FREQUENCY = {
    Control.Frequency.HOURLY: timedelta(hours=1),
    Control.Frequency.DAILY: timedelta(days=1),
    Control.Frequency.WEEKLY: timedelta(days=7),
    Control.Frequency.MONTHLY: timedelta(days=30),
}


def canonical_json(value: Any) -> str:
    """The one serialisation evidence is hashed in: sorted keys, no spaces, non-JSON values as strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def evidence_hash(evidence: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(evidence).encode()).hexdigest()


def control_outcome(control: Control) -> tuple[registry.Outcome, int]:
    """Run the control's check (or judge it inapplicable); a crash is an `error` outcome, never a pass."""
    started = time.monotonic()
    if not control.applicable:
        outcome = registry.Outcome.not_applicable(
            "Not applicable: " + (control.justification or "no justification written yet.")[:400],
            justification=control.justification,
        )
    else:
        function = registry.get(control.check_name)
        if function is None:
            outcome = registry.Outcome(registry.ERROR, f"Check {control.check_name} is not registered.", {})
        else:
            try:
                outcome = function()
                if outcome.status not in (registry.PASS, registry.FAIL, registry.NOT_APPLICABLE):
                    raise ValueError(f"check returned status {outcome.status!r}")
            except Exception as exc:  # recorded as `error` with its message: a crash is never a pass
                outcome = registry.Outcome(
                    registry.ERROR,
                    f"The check crashed: {type(exc).__name__}: {exc}"[:500],
                    {"exception": type(exc).__name__, "message": str(exc)[:2000]},
                )
    return outcome, int((time.monotonic() - started) * 1000)


FAILING = (registry.FAIL, registry.ERROR)


def result_record(*, evaluation: Evaluation, control: Control) -> Result:
    """Evaluate `control` for `evaluation` unless it already has its result (a retried job)."""
    existing = Result.objects.filter(evaluation=evaluation, control=control).first()
    if existing is not None:
        return existing
    outcome, duration_ms = control_outcome(control)
    evidence = json.loads(canonical_json(outcome.evidence))
    digest = evidence_hash(evidence)
    with transaction.atomic():
        previous = (
            Result.objects.filter(control=control)
            .order_by("-evaluated_at", "-pk")
            .values_list("status", flat=True)
            .first()
        )
        result = Result.objects.create(
            evaluation=evaluation,
            control=control,
            check_name=control.check_name,
            status=outcome.status,
            summary=outcome.summary[:500],
            evidence=evidence,
            evidence_sha256=digest,
            duration_ms=duration_ms,
            evaluated_at=timezone.now(),
        )
        control_event_append(
            aggregate_type="compliance_control",
            aggregate_id=control.key,
            event_type="ComplianceResultRecorded",
            data={
                "result_id": result.pk,
                "evaluation_id": evaluation.pk,
                "status": result.status,
                "summary": result.summary,
                "evidence_sha256": digest,
                "duration_ms": duration_ms,
            },
            expected_version=None,
        )
        if result.status in FAILING and previous not in FAILING:
            # Once per change to failing (webhooks send it as compliance.control_failing), not every run.
            control_event_append(
                aggregate_type="compliance_control",
                aggregate_id=control.key,
                event_type="ControlFailing",
                data={
                    "control": control.key,
                    "result_id": result.pk,
                    "status": result.status,
                    "summary": result.summary,
                },
                expected_version=None,
            )
    return result


def evaluation_controls(keys: list[str] | None) -> list[Control]:
    """The automated controls to evaluate: the named ones, or every automated control."""
    controls = Control.objects.exclude(check_name="").order_by("key")
    if keys:
        controls = controls.filter(key__in=keys)
    return list(controls)


def snapshots_record(evaluation: Evaluation) -> None:
    """Readiness per framework of the evaluation's library, from the latest result of every control."""
    now = timezone.now()
    latest = selectors.latest_results()
    for framework in Framework.objects.filter(library=evaluation.library):
        status = selectors.framework_status(framework, latest=latest)
        FrameworkSnapshot.objects.get_or_create(
            evaluation=evaluation,
            framework=framework,
            defaults={
                "taken_at": now,
                "applicable": status.applicable,
                "satisfied": status.satisfied,
                "counts": status.counts,
            },
        )


@register
class EvaluateControls(JobHandler):
    """Evaluates controls: one Result per control, then readiness snapshots per framework."""

    kind = EVALUATE
    title = "Evaluate compliance controls"

    def cap(self) -> int | None:
        return 1  # one evaluation at a time: results of two at once would interleave in history

    def lease(self) -> float:
        return float(settings.COMPLIANCE_JOB_LEASE_SECONDS)

    def run(self, ctx: JobContext) -> dict[str, Any]:
        lib = library.library_ensure(actor=SCHEDULE)
        evaluation, _ = Evaluation.objects.get_or_create(
            job=ctx.job,
            defaults={
                "library": lib,
                "requested_by": ctx.job.requested_by_label or SCHEDULE.label,
                "controls": list(ctx.payload.get("controls") or []),
                "started_at": timezone.now(),
            },
        )
        controls = evaluation_controls(evaluation.controls or None)
        counts: dict[str, int] = {}
        for done, control in enumerate(controls):
            if ctx.cancel_requested():
                break
            ctx.progress(done, len(controls), f"Checking {control.name}")
            result = result_record(evaluation=evaluation, control=control)
            counts[result.status] = counts.get(result.status, 0) + 1
        ctx.progress(len(controls), len(controls), "Recording readiness")
        snapshots_record(evaluation)
        Evaluation.objects.filter(pk=evaluation.pk).update(finished_at=timezone.now(), counts=counts)
        return {"evaluation_id": evaluation.pk, **counts}


def evaluation_open() -> Job | None:
    return Job.objects.filter(kind=EVALUATE, state__in=Job.OPEN).order_by("-id").first()


def evaluation_start(*, actor: Actor, control_keys: list[str] | None = None, request: HttpRequest | None = None) -> Job:
    """Start an evaluation of the named controls (None: all automated ones); one at a time."""
    keys = sorted(set(control_keys or []))
    if keys:
        known = set(Control.objects.filter(key__in=keys).exclude(check_name="").values_list("key", flat=True))
        unknown = sorted(set(keys) - known)
        if unknown:
            raise InvalidInput(f"No automated control is called {unknown[0][:60]}.")
    with transaction.atomic():
        library.library_ensure(actor=actor)
        open_job = evaluation_open()
        if open_job is not None:
            if isinstance(actor, SystemActor):
                return open_job
            raise Conflict("An evaluation is already running; its progress is on this screen.")
        job = job_create(kind=EVALUATE, payload={"controls": keys}, concurrency_key="compliance", actor=actor)
        if not isinstance(actor, SystemActor):
            audit_record(
                actor=actor,
                action=AuditAction.COMPLIANCE_EVALUATE,
                target_type="job",
                target_id=job.pk,
                summary=f"Started a compliance evaluation of {', '.join(keys) if keys else 'every control'}",
                request=request,
            )
    return job


def controls_due(now: Any = None) -> list[str]:
    """Automated controls whose latest result is older than their frequency (or that have none)."""
    now = now or timezone.now()
    latest = selectors.latest_results()
    due = []
    for control in Control.objects.exclude(check_name="").order_by("key"):
        result = latest.get(control.pk)
        if result is None or result.evaluated_at <= now - FREQUENCY[Control.Frequency(control.frequency)] + timedelta(
            minutes=1
        ):
            due.append(control.key)
    return due


def evaluate_due() -> Job | None:
    """The beat's entry point: evaluate what is due, unless nothing is or an evaluation is open. A fresh
    install loads the newest library here, so the schedule starts without anyone pressing a button."""
    if evaluation_open() is not None:
        return None
    library.library_ensure(actor=SCHEDULE)
    due = controls_due()
    if not due:
        return None
    return evaluation_start(actor=SCHEDULE, control_keys=due)


def control_update(
    *,
    control: Control,
    actor: Actor,
    owner_username: str | None = None,
    applicable: bool | None = None,
    justification: str | None = None,
    frequency: str | None = None,
    request: HttpRequest | None = None,
) -> Control:
    """Change a control's owner, applicability + justification or frequency (Admin; checked by callers)."""
    changes: dict[str, Any] = {}
    if owner_username is not None:
        if owner_username == "":
            changes["owner"] = None
        else:
            owner = User.objects.filter(username=owner_username[:150], is_active=True).first()
            if owner is None or operator_role(owner) is None:
                raise InvalidInput("The owner must be an active operator.")
            changes["owner"] = owner
    if justification is not None:
        if "\x00" in justification or len(justification) > 2000:
            raise InvalidInput("The justification must be at most 2,000 characters of text.")
        changes["justification"] = justification.strip()
    if applicable is not None:
        changes["applicable"] = applicable
        if not applicable and not (changes.get("justification", control.justification)).strip():
            raise InvalidInput("Marking a control not applicable needs a written justification.")
    if frequency is not None:
        if frequency not in Control.Frequency.values:
            raise InvalidInput("The frequency must be hourly, daily, weekly or monthly.")
        changes["frequency"] = frequency
    if not changes:
        return control
    with transaction.atomic():
        locked = Control.objects.select_for_update().filter(pk=control.pk).first()
        if locked is None:
            raise NotFound("No such control.")
        before = {
            "owner": locked.owner.username if locked.owner else None,
            "applicable": locked.applicable,
            "frequency": locked.frequency,
        }
        for name, value in changes.items():
            setattr(locked, name, value)
        locked.save()
        after = {
            "owner": locked.owner.username if locked.owner else None,
            "applicable": locked.applicable,
            "frequency": locked.frequency,
        }
        audit_record(
            actor=actor,
            action=AuditAction.COMPLIANCE_CONTROL_CHANGE,
            target_type="compliance_control",
            target_id=locked.key,
            summary=f"Changed control {locked.key}",
            request=request,
            details={"before": before, "after": after, "justification_changed": "justification" in changes},
        )
    return locked


def signin_review_record(*, actor: Actor, note: str = "", request: HttpRequest | None = None) -> None:
    """An Admin records that the failed sign-ins up to now were reviewed (check `signin_review`)."""
    if "\x00" in note or len(note) > 500:
        raise InvalidInput("The note must be at most 500 characters of text.")
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditAction.COMPLIANCE_SIGNIN_REVIEW,
            target_type="compliance_control",
            target_id="sign-in-monitoring",
            summary=("Reviewed failed sign-ins: " + note.strip())[:500] if note.strip() else "Reviewed failed sign-ins",
            request=request,
        )


def attestation_record(
    *,
    control: Control,
    actor: Actor,
    statement: str,
    valid_days: int,
    evidence_url: str = "",
    request: HttpRequest | None = None,
) -> Attestation:
    """An Admin vouches for a manual control until `valid_days` from now (1–400): the only way a manual
    control counts as satisfied. Automated controls are proven by their checks, never attested."""
    check_role(actor, Role.ADMIN)
    if control.automated:
        raise InvalidInput("Automated controls are proven by their check, not attested.")
    if not isinstance(statement, str) or "\x00" in statement or not statement.strip() or len(statement) > 2000:
        raise InvalidInput("The statement must be 1 to 2,000 characters of text.")
    if not isinstance(valid_days, int) or not 1 <= valid_days <= 400:
        raise InvalidInput("An attestation is valid for 1 to 400 days.")
    evidence_url = (evidence_url or "").strip()
    if evidence_url and (len(evidence_url) > 500 or not evidence_url.startswith(("https://", "http://"))):
        raise InvalidInput("The evidence link must be an http(s) address of at most 500 characters.")
    now = timezone.now()
    with transaction.atomic():
        attestation = Attestation.objects.create(
            control=control,
            statement=statement.strip(),
            evidence_url=evidence_url,
            attested_by=actor_user(actor),
            attested_by_label=actor_label(actor),
            attested_at=now,
            valid_until=now + timedelta(days=valid_days),
        )
        control_event_append(
            aggregate_type="compliance_control",
            aggregate_id=control.key,
            event_type="ComplianceAttestationRecorded",
            data={
                "attestation_id": attestation.pk,
                "by": attestation.attested_by_label,
                "valid_until": attestation.valid_until.isoformat(),
                "statement_sha256": hashlib.sha256(attestation.statement.encode()).hexdigest(),
            },
            expected_version=None,
        )
        audit_record(
            actor=actor,
            action=AuditAction.COMPLIANCE_ATTEST,
            target_type="compliance_control",
            target_id=control.key,
            summary=f"Attested {control.key} until {attestation.valid_until:%Y-%m-%d}",
            request=request,
        )
    return attestation
