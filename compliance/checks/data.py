"""Checks about personal data and resilience: backups, data-subject requests, retention, the record of
processing, incident notification. Where the module a check would read does not exist yet (tenant
exports, data-subject requests, retention jobs) the check fails and says so — never a silent pass."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models
from django.utils import timezone

from compliance import library
from compliance.checks.registry import Outcome, check
from compliance.models import Incident
from jobs.models import Job
from tenants.models import Tenant

# Field names that hold personal data whatever their type; email and IP-address fields always do.
PERSONAL_NAMES = {
    "email",
    "first_name",
    "last_name",
    "full_name",
    "username",
    "phone",
    "address",
    "ip_address",
    "user_agent",
}
PERSONAL_TYPES = (models.EmailField, models.GenericIPAddressField)
# Models whose `name` is not a person's (a tenant's company name, an account, a plan …).
NOT_PERSONAL_MODELS = {
    "tenants.Tenant",
    "workspace.Account",
    "auth.Group",
    "auth.Permission",
    "contenttypes.ContentType",
}


@check("backups_rpo")
def backups_rpo() -> Outcome:
    """Proves every active tenant has an export (backup) newer than its plan's recovery point objective
    (COMPLIANCE_RPO_HOURS per plan), read from the tenant-export jobs on the job engine. Until tenant
    exports exist no job of that kind does, so every active tenant fails, named.

    Evidence: per tenant its plan, RPO and newest export."""
    rpo = dict(settings.COMPLIANCE_RPO_HOURS)
    now = timezone.now()
    newest: dict[str, Any] = {}
    for payload, finished in Job.objects.filter(kind="tenants.export", state="succeeded").values_list(
        "payload", "finished_at"
    ):
        key = str((payload or {}).get("tenant_id", ""))
        if finished and (key not in newest or finished > newest[key]):
            newest[key] = finished
    problems = []
    tenants = Tenant.objects.filter(status=Tenant.Status.ACTIVE).order_by("slug").values("id", "slug", "plan")
    for tenant in tenants:
        hours = int(rpo.get(tenant["plan"], 24))
        last = newest.get(str(tenant["id"]))
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
        "{n} active tenants have no export within their RPO (tenant exports are not built yet)."
        if not newest
        else "{n} active tenants have no export within their RPO.",
        rpo_hours=rpo,
        tenants=len(tenants),
    )


@check("dsar_sla")
def dsar_sla() -> Outcome:
    """Proves data-subject requests (access, erasure, portability) were answered within
    COMPLIANCE_DSAR_SLA_DAYS and each erasure was verified. There is no data-subject request register
    yet, so no request can be shown to have been answered: this fails until that module exists.

    Evidence: what is missing."""
    return Outcome.failed(
        "No data-subject request register exists yet, so answers within the SLA cannot be shown.",
        sla_days=int(settings.COMPLIANCE_DSAR_SLA_DAYS),
        missing="data-subject request register (DSAR export, erasure saga with verification)",
    )


@check("retention_holds")
def retention_holds() -> Outcome:
    """Proves a retention job (a job kind starting `retention.`) succeeded within the last two days and that
    none of them reported deleting data under a legal hold. No retention job kind exists yet, so this
    fails until retention policies and legal holds are built.

    Evidence: the newest retention jobs and their results."""
    since = timezone.now() - timedelta(days=2)
    recent = list(
        Job.objects.filter(kind__startswith="retention.", finished_at__gte=since)
        .order_by("-finished_at")
        .values("id", "kind", "state", "result")[:20]
    )
    succeeded = [j for j in recent if j["state"] == "succeeded"]
    violations = [j["id"] for j in succeeded if (j["result"] or {}).get("held_deleted")]
    if not succeeded:
        return Outcome.failed(
            "No retention job succeeded in the last two days (retention jobs are not built yet).", jobs=recent
        )
    return Outcome.judged(
        violations,
        f"{len(succeeded)} retention jobs ran in two days and respected every legal hold.",
        "{n} retention jobs deleted data under a legal hold.",
        jobs=recent,
    )


def personal_fields() -> list[str]:
    """Every concrete model field that looks like personal data, as "app_label.Model.field"."""
    found = []
    for model in apps.get_models():
        label = f"{model._meta.app_label}.{model.__name__}"
        if label in NOT_PERSONAL_MODELS or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, PERSONAL_TYPES) or field.name in PERSONAL_NAMES:
                found.append(f"{label}.{field.name}")
    return sorted(found)


@check("processing_record")
def processing_record() -> Outcome:
    """Proves every model field that holds personal data (by type: email and IP addresses; by name: names,
    usernames, phones, addresses, user agents) is listed in the record of processing
    (compliance/library/<version>/processing.yaml) with a purpose and a retention.

    Evidence: the fields found and those missing from the record."""
    record = library.processing_record()
    fields = personal_fields()
    missing = [f for f in fields if f not in record or not (record[f] or {}).get("purpose")]
    return Outcome.judged(
        missing,
        f"All {len(fields)} personal-data fields are in the record of processing.",
        "{n} personal-data fields are missing from the record of processing: " + ", ".join(missing[:5]) + ".",
        fields=fields,
        recorded=len(record),
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
