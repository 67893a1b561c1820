"""Re-reading every placement's migrations and comparing them with what the control plane recorded.

Provisioning and migration runs record each placement's applied migrations as they change them
(tenants.MigrationState); the Migrations screen reads only that record. This job — kind
`migration_runs.verify`, on the job engine, scheduled every MIGRATIONS_VERIFY_INTERVAL_SECONDS
and startable from the screen — reads the placements in chunks (plans.status: one query per
few hundred schemas, one connection per dedicated database) and reconciles:

- no record yet (a placement from before this existed, or one a crash left unrecorded): recorded;
- the record matches: `verified_at` moves on;
- the record differs (someone migrated a placement by hand, restored a backup, dropped a table):
  the truth is recorded and the row keeps a `drift` sentence until a migration run or
  provisioning records it again; a `MigrationStateDrifted` event goes to the control-plane log;
- the placement cannot be read: its `error` says why, its record stays as it was.

A record written after this job read the placement is newer than the read: it is left alone
(compared under the row lock, so a run finishing meanwhile never shows up as drift).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, SystemActor
from core.errors import Conflict
from events.services import control_event_append
from jobs.models import Job
from jobs.registry import JobContext, JobHandler, register
from jobs.services import job_create
from migration_runs import plans
from tenants import migration_state
from tenants.models import MigrationState, Placement

VERIFY = "migration_runs.verify"
SCHEDULE = SystemActor("migration state schedule")
CHUNK = 500  # placements read and reconciled per transaction


def _drift_sentence(recorded: list[str], found: list[str], missing: bool) -> str:
    if missing:
        return "The migration table is gone."
    lost = sorted(set(recorded) - set(found))
    gained = sorted(set(found) - set(recorded))
    parts = []
    if gained:
        parts.append(f"applied outside a run: {', '.join(gained[:3])}{' …' if len(gained) > 3 else ''}")
    if lost:
        parts.append(f"no longer applied: {', '.join(lost[:3])}{' …' if len(lost) > 3 else ''}")
    return ("Changed since recorded — " + "; ".join(parts) + ".")[:500]


def reconcile(statuses: list[plans.TargetStatus], *, read_started: datetime) -> dict[str, int]:
    """Compare placements read at `read_started` with their records and update them (one transaction)."""
    counts = {"placements": 0, "recorded": 0, "verified": 0, "drifted": 0, "unreachable": 0}
    by_id = {st.target.placement_id: st for st in statuses if st.target.placement_id is not None}
    if not by_id:
        return counts
    now = timezone.now()
    with transaction.atomic():
        stored = {
            s.placement_id: s for s in MigrationState.objects.select_for_update().filter(placement_id__in=list(by_id))
        }
        fresh: list[migration_state.Observed] = []
        matched: list[int] = []
        for placement_id, st in by_id.items():
            counts["placements"] += 1
            record = stored.get(placement_id)
            if record is not None and record.recorded_at > read_started:
                continue  # a writer recorded it after we read it: the record is newer than our read
            if st.error:
                counts["unreachable"] += 1
                if record is not None:
                    MigrationState.objects.filter(pk=record.pk).update(error=st.error[:500])
                continue
            found = sorted(plans.fmt(k) for k in st.applied)
            seen = migration_state.Observed(st.target, found, st.missing)
            if record is None:
                counts["recorded"] += 1
                fresh.append(seen)
            elif record.digest == migration_state.digest_of(found) and record.missing == st.missing:
                counts["verified"] += 1
                matched.append(record.pk)
            else:
                counts["drifted"] += 1
                sentence = _drift_sentence(record.applied, found, st.missing)
                migration_state.states_record([seen], verified=True)
                MigrationState.objects.filter(pk=record.pk).update(drift=sentence)
                control_event_append(
                    aggregate_type="placement",
                    aggregate_id=str(placement_id),
                    event_type="MigrationStateDrifted",
                    data={
                        "label": st.target.label,
                        "drift": sentence,
                        "recorded": len(record.applied),
                        "found": len(found),
                    },  # fmt: skip
                    expected_version=None,
                )
        migration_state.states_record(fresh, verified=True)
        MigrationState.objects.filter(pk__in=matched).update(verified_at=now, error="")
    return counts


@register
class VerifyMigrationState(JobHandler):
    """Reads every placement's migration table and reconciles the control plane's record."""

    kind = VERIFY
    title = "Verify recorded migration state"

    def cap(self) -> int | None:
        return 1  # one verification at a time

    def lease(self) -> float:
        return float(settings.MIGRATIONS_JOB_LEASE_SECONDS)

    def run(self, ctx: JobContext) -> dict[str, Any]:
        ids = list(Placement.objects.order_by("id").values_list("id", flat=True))
        totals = {"placements": 0, "recorded": 0, "verified": 0, "drifted": 0, "unreachable": 0}
        for start in range(0, len(ids), CHUNK):
            if ctx.cancel_requested():
                break
            chunk = [migration_state.placement_key(pk) for pk in ids[start : start + CHUNK]]
            read_started = timezone.now()
            statuses = plans.status(plans.targets(keys=chunk, include_templates=False))
            for key, value in reconcile(statuses, read_started=read_started).items():
                totals[key] += value
            ctx.progress(min(start + CHUNK, len(ids)), len(ids), f"{totals['drifted']} drifted so far")
        return totals


def verification_open() -> Job | None:
    return Job.objects.filter(kind=VERIFY, state__in=Job.OPEN).order_by("-id").first()


def verification_latest() -> Job | None:
    return Job.objects.filter(kind=VERIFY).order_by("-id").first()


def verification_start(*, actor: Actor, request: HttpRequest | None = None) -> Job:
    """Start a verification now (an operator or the schedule); one at a time."""
    with transaction.atomic():
        if verification_open() is not None:
            if isinstance(actor, SystemActor):
                return verification_open()  # type: ignore[return-value]  # the schedule: one is enough
            raise Conflict("A verification is already running; its progress is on this screen.")
        job = job_create(kind=VERIFY, concurrency_key="verify", actor=actor)
        if not isinstance(actor, SystemActor):
            audit_record(
                actor=actor,
                action=AuditAction.MIGRATION_STATE_VERIFY,
                target_type="job",
                target_id=job.pk,
                summary="Started a verification of every placement's migrations",
                request=request,
            )
    return job
