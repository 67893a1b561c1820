"""Exports a reader can check: CSV / JSON of a framework report, and the auditor bundle (ZIP).

The bundle holds `manifest.json` (the SHA-256 of every other file), `controls_requirements.csv`,
one `evidence/<result id>.json` per result in the period (the stored evidence, in the canonical JSON
its recorded hash was taken over, with that hash), `change_management.json` (migration runs and dry
runs from the control-plane log), and `report.html` (printable). `bundle_verify` (command
`compliance_verify_bundle`) recomputes every file's hash and every evidence hash.

Small exports are built in the request; `export_start` builds any of them as a job of kind
`compliance.export` (progress on the framework page; the file is kept in `ExportFile`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from compliance import oscal, selectors
from compliance.models import ExportFile, Framework, Result
from compliance.services import canonical_json, evidence_hash
from core.actors import Actor
from core.errors import InvalidInput, NotFound
from events.models import Event
from jobs.models import Job
from jobs.registry import JobContext, JobHandler, register
from jobs.services import job_create

CSV_HEADER = [
    "framework",
    "requirement",
    "title",
    "mode",
    "state",
    "control",
    "control_name",
    "applicable",
    "status",
    "evaluated_at",
    "evidence_sha256",
]


def report_rows(framework: Framework, at: datetime | None = None) -> list[list[str]]:
    """One row per (requirement, control); a requirement without controls has one row with empty control cells."""
    status = selectors.framework_status(framework, at)
    rows = []
    for item in status.requirements:
        req = item.requirement
        base = [framework.key, req.ref, req.title, req.mode, item.state]
        if not item.controls:
            rows.append(base + ["", "", "", "", "", ""])
        for control, result in item.controls:
            rows.append(
                base
                + [
                    control.key,
                    control.name,
                    "yes" if control.applicable else "no",
                    result.status if result else ("manual" if not control.automated else "not evaluated"),
                    result.evaluated_at.isoformat() if result else "",
                    result.evidence_sha256 if result else "",
                ]
            )
    return rows


def report_csv(framework: Framework, at: datetime | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row in report_rows(framework, at):
        # A cell starting with = + - @ would be a formula in a spreadsheet: prefix it.
        writer.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") else c for c in row])
    return out.getvalue()


def report_json(framework: Framework, at: datetime | None = None) -> dict[str, Any]:
    status = selectors.framework_status(framework, at)
    return {
        "framework": {"key": framework.key, "name": framework.name, "edition": framework.edition},
        "library": framework.library.version,
        "generated_at": timezone.now().isoformat(),
        "at": at.isoformat() if at else None,
        "readiness": status.readiness,
        "counts": status.counts,
        "requirements": [
            {
                "ref": item.requirement.ref,
                "title": item.requirement.title,
                "mode": item.requirement.mode,
                "state": item.state,
                "na_reason": item.requirement.na_reason,
                "controls": [
                    {
                        "key": control.key,
                        "applicable": control.applicable,
                        "automated": control.automated,
                        "status": result.status if result else None,
                        "summary": result.summary if result else None,
                        "result_id": result.pk if result else None,
                        "evaluated_at": result.evaluated_at.isoformat() if result else None,
                        "evidence_sha256": result.evidence_sha256 if result else None,
                    }
                    for control, result in item.controls
                ],
            }
            for item in status.requirements
        ],
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bundle_build(
    framework: Framework, *, period_from: datetime | None = None, period_to: datetime | None = None, progress=None
) -> bytes:
    """The auditor bundle of one framework for a period (default: everything up to now), as ZIP bytes."""
    period_to = period_to or timezone.now()
    control_ids = list(
        framework.requirements.values_list("controls", flat=True).exclude(controls__isnull=True).distinct()
    )
    results = Result.objects.filter(control_id__in=control_ids, evaluated_at__lte=period_to).select_related("control")
    if period_from is not None:
        results = results.filter(evaluated_at__gte=period_from)
    files: dict[str, bytes] = {}
    files["controls_requirements.csv"] = report_csv(framework, period_to).encode()
    total = results.count()
    for done, result in enumerate(results.order_by("evaluated_at", "id").iterator(chunk_size=500), start=1):
        body = {
            "result_id": result.pk,
            "control": result.control.key,
            "check": result.check_name,
            "status": result.status,
            "summary": result.summary,
            "evaluated_at": result.evaluated_at.isoformat(),
            "duration_ms": result.duration_ms,
            "evidence_sha256": result.evidence_sha256,
            "evidence": result.evidence,
        }
        files[f"evidence/{result.pk}.json"] = canonical_json(body).encode()
        if progress is not None and done % 200 == 0:
            progress(done, total)
    changes = Event.objects.filter(
        aggregate_type__in=["migration_run", "migration_plan"], occurred_at__lte=period_to
    ).order_by("event_id")
    if period_from is not None:
        changes = changes.filter(occurred_at__gte=period_from)
    files["change_management.json"] = canonical_json(
        [
            {
                "event_id": e.event_id,
                "stream": f"{e.aggregate_type}/{e.aggregate_id}",
                "type": e.event_type,
                "occurred_at": e.occurred_at.isoformat(),
                "data": e.event_data,
                "hash": e.hash_hex,
            }
            for e in changes[:50_000]
        ]
    ).encode()
    report = report_json(framework, period_to)
    files["report.json"] = canonical_json(report).encode()
    files["oscal-assessment-results.json"] = json.dumps(
        oscal.assessment_results(framework, period_to), indent=2
    ).encode()
    files["report.html"] = render_to_string(
        "compliance/report_print.html",
        {"report": report, "period_from": period_from, "period_to": period_to, "results": total},
    ).encode()
    manifest = {
        "framework": framework.key,
        "library": framework.library.version,
        "period_from": period_from.isoformat() if period_from else None,
        "period_to": period_to.isoformat(),
        "generated_at": timezone.now().isoformat(),
        "files": {name: sha256(data) for name, data in sorted(files.items())},
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
        for name, data in sorted(files.items()):
            archive.writestr(name, data)
    return out.getvalue()


EXPORT = "compliance.export"
FORMATS = {
    "zip": "application/zip",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "oscal": "application/json",
}


def export_bytes(
    framework: Framework, fmt: str, *, period_from: datetime | None, period_to: datetime | None, progress=None
) -> bytes:
    if fmt == "zip":
        return bundle_build(framework, period_from=period_from, period_to=period_to, progress=progress)
    if fmt == "csv":
        return report_csv(framework, period_to).encode()
    if fmt == "oscal":
        return json.dumps(oscal.assessment_results(framework, period_to), indent=2).encode()
    return json.dumps(report_json(framework, period_to), indent=2).encode()


@register
class ExportReport(JobHandler):
    """Builds a report file (the auditor bundle over a long period can take a while) with live progress."""

    kind = EXPORT
    title = "Export a compliance report"

    def run(self, ctx: JobContext) -> dict[str, Any]:
        payload = ctx.payload
        framework = Framework.objects.get(pk=payload["framework_id"])
        start = datetime.fromisoformat(payload["from"]) if payload.get("from") else None
        end = datetime.fromisoformat(payload["to"]) if payload.get("to") else None
        data = export_bytes(framework, payload["format"], period_from=start, period_to=end, progress=ctx.progress)
        digest = sha256(data)
        suffix = {"oscal": "oscal.json"}.get(payload["format"], payload["format"])
        name = f"compliance-{framework.key}-{(end or timezone.now()).strftime('%Y%m%d')}.{suffix}"
        # Safe to run twice: a retry after a worker died replaces the file the first attempt wrote.
        ExportFile.objects.update_or_create(
            job=ctx.job,
            defaults={"name": name, "content_type": FORMATS[payload["format"]], "sha256": digest, "data": data},
        )
        return {"name": name, "sha256": digest, "bytes": len(data)}


def export_start(
    *,
    framework: Framework,
    fmt: str,
    actor: Actor,
    period_from: datetime | None = None,
    period_to: datetime | None = None,
    request: HttpRequest | None = None,
) -> Job:
    """Start an export job (readers may: it changes nothing but the audit trail, which records it)."""
    if fmt not in FORMATS:
        raise InvalidInput("The format is zip, csv, json or oscal.")
    if period_from and period_to and period_from > period_to:
        raise InvalidInput("The period must start before it ends.")
    with transaction.atomic():
        job = job_create(
            kind=EXPORT,
            payload={
                "framework_id": framework.pk,
                "format": fmt,
                "from": period_from.isoformat() if period_from else None,
                "to": period_to.isoformat() if period_to else None,
            },
            actor=actor,
        )
        audit_record(
            actor=actor,
            action=AuditAction.COMPLIANCE_EXPORT,
            target_type="compliance_framework",
            target_id=framework.key,
            summary=f"Started an export of the {framework.name} report as {fmt.upper()}",
            request=request,
            details={"job": job.pk},
        )
    return job


def export_file_get(job_id: Any) -> ExportFile:
    try:
        pk = int(job_id)
    except (TypeError, ValueError):
        raise NotFound("No such export.") from None
    found = ExportFile.objects.filter(job_id=pk).first() if 0 < pk < 2**63 else None
    if found is None:
        raise NotFound("No such export (or it is not finished yet).")
    return found


def bundle_verify(data: bytes) -> list[str]:
    """Problems found in a bundle: files whose SHA-256 differs from the manifest, files missing from or
    not listed in it, evidence whose recorded hash does not match its content. Empty: it verifies."""
    problems = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        manifest = json.loads(archive.read("manifest.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        return ["Not a compliance bundle: no readable manifest.json."]
    listed = dict(manifest.get("files") or {})
    present = {n for n in archive.namelist() if not n.endswith("/")} - {"manifest.json"}  # not directories
    for name in sorted(set(listed) - present):
        problems.append(f"{name}: listed in the manifest but missing.")
    for name in sorted(present - set(listed)):
        problems.append(f"{name}: not listed in the manifest.")
    for name in sorted(present & set(listed)):
        content = archive.read(name)
        if sha256(content) != listed[name]:
            problems.append(f"{name}: SHA-256 differs from the manifest.")
        elif name.startswith("evidence/"):
            body = json.loads(content)
            if evidence_hash(body.get("evidence", {})) != body.get("evidence_sha256"):
                problems.append(f"{name}: the evidence does not match its recorded SHA-256.")
    return problems
