"""Job kinds of the usage app (docs/jobs.md): collection runs and the owner's quota email.

`usage.collect` reads every tenant and writes the rollups (usage.collection), then raises quota
warnings and writes the closed days' usage records (usage.services). Each step is safe to repeat, so
a retried or redelivered job ends with the same figures. Beat starts one every
USAGE_COLLECT_INTERVAL_SECONDS unless one is still open; an Operator can start one from the usage screen.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, SystemActor
from core.errors import Conflict
from core.quotas import LABELS, human
from jobs.models import Job
from jobs.registry import JobContext, JobHandler, PermanentError, register
from jobs.services import job_create
from usage import collection, services
from usage.models import QuotaWarning

COLLECT = "usage.collect"
QUOTA_EMAIL = "usage.quota_email"
SCHEDULE = SystemActor("beat: usage collection")


@register
class CollectJob(JobHandler):
    kind = COLLECT
    title = "Usage collection"
    lease_seconds = 300.0

    def run(self, ctx: JobContext) -> dict[str, Any]:
        now = timezone.now()
        outcome = collection.collect(now=now, progress=lambda done, total: ctx.progress(done, total))
        warnings = services.quota_warnings_raise(now=now)
        records = services.usage_records_write(now=now)
        return {
            "tenants": outcome.tenants,
            "written": outcome.written,
            "skipped": outcome.skipped,
            "unreachable": outcome.failed,
            "events": outcome.events,
            "requests_this_hour": outcome.requests,
            "quota_warnings": len(warnings),
            "usage_records": records,
        }


@register
class QuotaEmailJob(JobHandler):
    """Tell the tenant's owner a quota reached 80 % or 100 % (at least once: marked after sending)."""

    kind = QUOTA_EMAIL
    title = "Quota warning email"
    max_attempts = 5

    def run(self, ctx: JobContext) -> dict[str, Any]:
        warning = (
            QuotaWarning.objects.select_related("tenant").filter(pk=int(ctx.payload.get("warning_id") or 0)).first()
        )
        if warning is None:
            raise PermanentError("The quota warning no longer exists.")
        if warning.emailed_at is not None:
            return {"sent": False, "reason": "already sent"}
        tenant = warning.tenant
        label = LABELS.get(warning.quota, warning.quota)
        used = human(warning.quota, warning.value)
        limit = human(warning.quota, warning.limit)
        reached = "has reached" if warning.level >= 100 else f"is at {warning.level} % of"
        send_mail(
            subject=f"{tenant.name}: {label} {reached} your plan's limit",
            message=(
                f"Hello,\n\nyour workspace {tenant.name} ({tenant.slug}) {reached} the {label} its "
                f"{tenant.get_plan_display()} plan allows: {used} of {limit}.\n"
                + (
                    "New additions are refused until usage drops or the plan is upgraded.\n"
                    if warning.level >= 100
                    else "Nothing is refused yet; at 100 % new additions will be.\n"
                )
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[tenant.owner_email],
        )
        QuotaWarning.objects.filter(pk=warning.pk, emailed_at__isnull=True).update(emailed_at=timezone.now())
        return {"sent": True, "to": tenant.owner_email}


def collection_open() -> Job | None:
    return Job.objects.filter(kind=COLLECT, state__in=Job.OPEN).order_by("-id").first()


def collection_start(*, actor: Actor, request: Any = None) -> Job:
    """Start a collection now (beat or an Operator); one at a time."""
    with transaction.atomic():
        open_job = collection_open()
        if open_job is not None:
            if isinstance(actor, SystemActor):
                return open_job
            raise Conflict("A usage collection is already running; its progress is on this screen.")
        job = job_create(kind=COLLECT, concurrency_key="usage", actor=actor)
        if not isinstance(actor, SystemActor):
            audit_record(
                actor=actor,
                action=AuditAction.USAGE_COLLECT,
                target_type="job",
                target_id=job.pk,
                summary="Started a usage collection of every tenant",
                request=request,
            )
    return job
