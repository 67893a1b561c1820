"""Retention policies executed as jobs (kind `privacy.retention`), respecting legal holds.

Beat calls `privacy.retention_schedule` daily: one job per enabled policy and day (the day is in
the job's group, so a second beat the same day adds nothing). Each job purges what is older than
the policy's days, skips whatever a legal hold covers, and records a RetentionRun (compliance
evidence) with what it removed and what holds kept, in the engine's transaction.

What each category purges:
- audit_entries: audit rows older than the cutoff, except rows of a tenant under hold. The app
  role may not DELETE audit rows (compliance/0001), so the purge runs as the owner role.
- sessions: expired operator sessions and, in every placement not under a tenant hold, expired
  member sessions.
- dsar_bundles: ZIP files of access requests finished before the cutoff (rows stay, marked purged).
- tenant_exports: files of tenant exports finished before the cutoff, except each tenant's newest
  (its recovery point), offboarding's final exports and those of tenants under hold
  (tenants.exports.services.tenant_exports_expire).
- expired_signups, control_events: nothing stored to purge (signups keep nothing until verified; the
  control log is immutable and has no sanctioned purge path) — the run says so in its note rather
  than pretending.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.contrib.sessions.models import Session
from django.db import connections, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, SystemActor, actor_label
from core.errors import InvalidInput
from jobs.models import Job
from jobs.registry import JobContext, JobHandler, register
from jobs.services import job_create
from privacy.models import LegalHold, RetentionCategory, RetentionPolicy, RetentionRun, SubjectRequest
from tenants.context import tenant_context
from tenants.exports.services import tenant_exports_expire
from tenants.models import Tenant
from workspace.models import MemberSession

KIND = "privacy.retention"
DEFAULT_DAYS: dict[str, int] = {
    RetentionCategory.AUDIT_ENTRIES: 365,
    RetentionCategory.CONTROL_EVENTS: 365,
    RetentionCategory.SESSIONS: 30,
    RetentionCategory.EXPIRED_SIGNUPS: 7,
    RetentionCategory.DSAR_BUNDLES: 30,
    RetentionCategory.TENANT_EXPORTS: 30,
}
MAX_DAYS = 36500


def policies() -> list[RetentionPolicy]:
    """Every category, with its stored policy or the default (not yet saved)."""
    stored = {p.category: p for p in RetentionPolicy.objects.all()}
    return [stored.get(c) or RetentionPolicy(category=c, days=DEFAULT_DAYS[c]) for c in RetentionCategory.values]


def policy_set(
    *, category: Any, days: Any, enabled: bool, actor: Actor, request: HttpRequest | None = None
) -> RetentionPolicy:
    if category not in RetentionCategory.values:
        raise InvalidInput("Unknown data category.")
    try:
        days = int(str(days).strip())
    except ValueError:
        raise InvalidInput("Days must be a whole number.") from None
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"Days must be between 1 and {MAX_DAYS}.")
    with transaction.atomic():
        policy, _ = RetentionPolicy.objects.update_or_create(
            category=category,
            defaults={
                "days": days,
                "enabled": bool(enabled),
                "updated_at": timezone.now(),
                "updated_by_label": actor_label(actor),
            },
        )
        audit_record(
            actor=actor,
            action=AuditAction.PRIVACY_RETENTION_SET,
            target_type="retention_policy",
            target_id=category,
            summary=f"Retention of {category}: {days} days{'' if enabled else ' (off)'}",
            request=request,
            details={"days": days, "enabled": bool(enabled)},
        )
    return policy


def _held_tenants() -> set[str]:
    now = timezone.now()
    return {
        str(h.tenant_id)
        for h in LegalHold.objects.filter(released_at__isnull=True, subject_ref="")
        if h.until is None or h.until > now
    }


def _held_subjects() -> set[tuple[str, str]]:
    now = timezone.now()
    return {
        (str(h.tenant_id), h.subject_ref)
        for h in LegalHold.objects.filter(released_at__isnull=True).exclude(subject_ref="")
        if h.until is None or h.until > now
    }


def purge(category: str, cutoff: dt.datetime) -> dict[str, Any]:
    """Idempotent: running it twice removes nothing more the second time."""
    held_tenants = _held_tenants()
    if category == RetentionCategory.AUDIT_ENTRIES:
        with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM compliance_auditentry WHERE occurred_at < %s AND details->>'tenant_id' = ANY(%s)",
                [cutoff, list(held_tenants)],
            )
            held = cursor.fetchone()[0]
            cursor.execute(
                "DELETE FROM compliance_auditentry WHERE occurred_at < %s"
                " AND NOT coalesce(details->>'tenant_id' = ANY(%s), false)",
                [cutoff, list(held_tenants)],
            )
            return {"purged": cursor.rowcount, "held": held}
    if category == RetentionCategory.SESSIONS:
        purged, held = Session.objects.filter(expire_date__lt=cutoff).delete()[0], 0
        for tenant in Tenant.objects.exclude(placement=None).select_related("placement"):
            if str(tenant.pk) in held_tenants:
                held += 1
                continue
            with tenant_context(tenant) as alias:
                purged += MemberSession.objects.using(alias).filter(expire_date__lt=cutoff).delete()[0]
        return {"purged": purged, "held": held}
    if category == RetentionCategory.DSAR_BUNDLES:
        held_subjects, purged, held = _held_subjects(), 0, 0
        for r in SubjectRequest.objects.filter(completed_at__lt=cutoff, bundle_purged_at__isnull=True).exclude(
            bundle_path=""
        ):
            if str(r.tenant_id) in held_tenants or (str(r.tenant_id), r.subject_ref) in held_subjects:
                held += 1
                continue
            Path(r.bundle_path).unlink(missing_ok=True)
            SubjectRequest.objects.filter(pk=r.pk).update(bundle_purged_at=timezone.now())
            purged += 1
        return {"purged": purged, "held": held}
    if category == RetentionCategory.TENANT_EXPORTS:
        return tenant_exports_expire(before=cutoff, held_tenants=held_tenants)
    notes: dict[str, str] = {
        RetentionCategory.EXPIRED_SIGNUPS: "Signups store nothing until verified: nothing to purge.",
        RetentionCategory.CONTROL_EVENTS: "Not purged: the control log is immutable and has no sanctioned purge yet.",
    }
    return {"purged": 0, "held": 0, "note": notes.get(category, "")}


@register
class RetentionJob(JobHandler):
    kind = KIND
    title = "Retention purge"

    def run(self, ctx: JobContext) -> dict[str, Any]:
        cutoff = dt.datetime.fromisoformat(ctx.payload["cutoff"])
        return {**purge(ctx.payload["category"], cutoff), "cutoff": ctx.payload["cutoff"]}

    def on_succeeded(self, job: Job, result: dict[str, Any]) -> None:
        RetentionRun.objects.update_or_create(
            job=job,
            defaults={
                "category": job.payload["category"],
                "cutoff": dt.datetime.fromisoformat(result["cutoff"]),
                "finished_at": timezone.now(),
                "purged": result.get("purged", 0),
                "held": result.get("held", 0),
                "note": result.get("note", "")[:300],
            },
        )
        return None


BEAT = SystemActor("beat: retention")


def retention_schedule(*, actor: Actor = BEAT, today: dt.date | None = None) -> list[Job]:
    """One purge job per enabled policy for `today` (a second call the same day adds none)."""
    today = today or timezone.now().date()
    created = []
    for policy in policies():
        if not policy.enabled:
            continue
        group = ("privacy.retention", f"{today.isoformat()}:{policy.category}")
        if Job.objects.filter(group_type=group[0], group_id=group[1]).exists():
            continue
        cutoff = timezone.now() - dt.timedelta(days=policy.days)
        with transaction.atomic():
            created.append(
                job_create(
                    kind=KIND,
                    payload={"category": policy.category, "cutoff": cutoff.isoformat(), "days": policy.days},
                    group=group,
                    actor=actor,
                )
            )
    return created
