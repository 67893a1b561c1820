"""Checks about personal data and resilience: backups, data-subject requests, retention, the record of
processing, incident notification. Each reads the records the feature writes (tenant exports, requests, retention
runs, incidents) — never a silent pass."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from compliance.checks.registry import Outcome, check
from compliance.models import Incident
from core import personal_data
from jobs.models import Job
from privacy.models import RequestKind, RequestStatus, RetentionPolicy, SubjectRequest
from privacy.retention import KIND as RETENTION_KIND
from tenants.models import Tenant, TenantExport


@check("backups_rpo")
def backups_rpo() -> Outcome:
    """Proves every active tenant has a finished export (tenants.TenantExport, state done, its file
    present) newer than its plan's recovery point objective (COMPLIANCE_RPO_HOURS per plan). The
    export schedule (tenants/exports/services.py) takes one every half RPO; a failed or running export
    does not count, nor one whose file was removed.

    Evidence: per failing tenant its plan, RPO and newest finished export."""
    rpo = dict(settings.COMPLIANCE_RPO_HOURS)
    now = timezone.now()
    newest: dict[Any, Any] = {}
    for tenant_id, finished, file_name in TenantExport.objects.filter(state=TenantExport.State.DONE).values_list(
        "tenant_id", "finished_at", "file_name"
    ):
        if finished and (tenant_id not in newest or finished > newest[tenant_id]):
            if (Path(settings.TENANCY_EXPORTS_DIR) / file_name).is_file():
                newest[tenant_id] = finished
    problems = []
    tenants = Tenant.objects.filter(status=Tenant.Status.ACTIVE).order_by("slug").values("id", "slug", "plan")
    for tenant in tenants:
        hours = int(rpo.get(tenant["plan"], 24))
        last = newest.get(tenant["id"])
        if last is None or last < now - timedelta(hours=hours):
            problems.append(
                {
                    "tenant": tenant["slug"],
                    "plan": tenant["plan"],
                    "rpo_hours": hours,
                    "newest": last.isoformat() if last else None,
                }
            )
    return Outcome.judged(
        problems,
        f"All {len(tenants)} active tenants have an export within their plan's RPO.",
        "{n} active tenants have no finished export within their plan's RPO.",
        rpo_hours=rpo,
        tenants=len(tenants),
    )


@check("dsar_sla")
def dsar_sla() -> Outcome:
    """Proves data-subject requests (access, portability, erasure; privacy.SubjectRequest) are answered
    within COMPLIANCE_DSAR_SLA_DAYS: no open request is past its due date, none was completed after it,
    and every completed erasure has a proof whose plain-text verification passed.

    Evidence: the requests counted, and each late, overdue or unproven one by id."""
    now = timezone.now()
    problems: list[dict[str, str]] = []
    counted = 0
    for request in SubjectRequest.objects.select_related("proof").order_by("opened_at"):
        counted += 1
        if request.is_open and now > request.due_at:
            problems.append({"id": str(request.pk), "problem": "open past its due date"})
        elif request.completed_at and request.completed_at > request.due_at:
            problems.append({"id": str(request.pk), "problem": "answered after its due date"})
        if request.kind == RequestKind.ERASURE and request.status == RequestStatus.COMPLETED:
            proof = getattr(request, "proof", None)
            if proof is None or not (proof.verification or {}).get("ok"):
                problems.append({"id": str(request.pk), "problem": "erasure without a verified proof"})
    return Outcome.judged(
        problems,
        f"All {counted} data-subject requests were answered in time; every erasure is proven.",
        "{n} data-subject requests are late, overdue or unproven.",
        requests=counted,
        sla_days=int(settings.COMPLIANCE_DSAR_SLA_DAYS),
    )


@check("retention_holds")
def retention_holds() -> Outcome:
    """Proves every enabled retention policy (privacy.RetentionPolicy) was executed by a successful
    `privacy.retention` job within the last two days. The job purges only what no legal hold covers
    (privacy/retention.py), and reports how many rows it kept because of a hold.

    Evidence: per policy its newest job, with the rows purged and the rows held."""
    since = timezone.now() - timedelta(days=2)
    newest: dict[str, dict[str, Any]] = {}
    for job in (
        Job.objects.filter(kind=RETENTION_KIND, state="succeeded", finished_at__gte=since)
        .order_by("finished_at")
        .values("id", "payload", "result", "finished_at")
    ):
        category = str((job["payload"] or {}).get("category", ""))
        result = job["result"] or {}
        newest[category] = {"job": job["id"], "purged": result.get("purged"), "held": result.get("held")}
    policies = list(RetentionPolicy.objects.filter(enabled=True).values_list("category", flat=True))
    missing = [category for category in policies if category not in newest]
    if not policies:
        return Outcome.failed("No retention policy is enabled, so nothing shows data is deleted on time.")
    return Outcome.judged(
        missing,
        f"All {len(policies)} retention policies ran in the last two days, legal holds kept.",
        "{n} retention policies did not run successfully in the last two days.",
        jobs=newest,
    )


@check("processing_record")
def processing_record() -> Outcome:
    """Proves the record of processing (GDPR Art. 30, generated from the personal-data registry in
    core/personal_data.py) is complete: every model field that looks personal (email and IP-address
    fields, names, phones, addresses, user agents) is declared — personal with a category, purpose and
    retention, or not personal with a reason — and no personal declaration lacks a purpose or retention.

    Evidence: the declared personal fields and any undeclared or incomplete ones."""
    entries = personal_data.registry()
    problems = personal_data.undeclared_fields() + [
        f"{e.owner}.{e.field}" for e in entries if not (e.purpose.strip() and e.retention.strip())
    ]
    return Outcome.judged(
        problems,
        f"All {len(entries)} personal-data fields are in the record of processing with a purpose and retention.",
        "{n} personal-data fields are undeclared or lack a purpose or retention: " + ", ".join(problems[:5]) + ".",
        declared=len(entries),
    )


@check("incidents_notified")
def incidents_notified() -> Outcome:
    """Proves every notifiable incident in the register was notified to the authority within 72 hours of
    its detection (and none older than 72 hours is still waiting).

    Evidence: the notifiable incidents, with detection and notification times."""
    limit = timedelta(hours=72)
    now = timezone.now()
    problems, seen = [], []
    for incident in Incident.objects.filter(notifiable=True).order_by("detected_at"):
        seen.append(
            {
                "id": incident.pk,
                "title": incident.title,
                "detected_at": incident.detected_at.isoformat(),
                "notified_at": incident.notified_at.isoformat() if incident.notified_at else None,
            }
        )
        if incident.notified_at is None and now - incident.detected_at > limit:
            problems.append({"id": incident.pk, "problem": "not notified after 72 hours"})
        elif incident.notified_at is not None and incident.notified_at - incident.detected_at > limit:
            problems.append({"id": incident.pk, "problem": "notified later than 72 hours"})
    return Outcome.judged(
        problems,
        f"{len(seen)} notifiable incidents, each notified within 72 hours.",
        "{n} incidents were not notified within 72 hours.",
        incidents=seen,
    )
