"""Access and portability (Art. 15, 20): gather one subject's data in one tenant into a ZIP.

The job kind `privacy.dsar_export` runs `subject_gather` inside the tenant's context (so RLS and
the placement's routing apply: nothing of another tenant is visible), opens only this subject's
encrypted envelopes (events.crypto.decrypt_for_subject: anyone else's personal data in the same
event stays "[another person]"), and writes `subject.json` (machine-readable, Art. 20), one CSV per
section and `manifest.json` with each file's SHA-256. The ZIP is written to a temporary name and
renamed, so a worker that dies half-way leaves nothing that looks finished; the retry rewrites it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from audit.models import AuditEntry
from core.personal_data import subject_ref
from events.crypto import decrypt_for_subject, subject_reader
from events.tenantlog.models import TenantEvent
from jobs.models import Job
from jobs.registry import JobContext, JobHandler, PermanentError, register
from privacy.models import RequestStatus, SubjectRequest
from privacy.services import EXPORT_KIND, TARGET, request_email
from tenants.context import tenant_context
from tenants.logs import tenant_log_store
from tenants.models import Tenant
from workspace.models import Member

PII_PATH = '$.** ? (@."$pii" == $s)'


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text  # no spreadsheet formulas


def subject_events(qs: QuerySet[TenantEvent], subject: str, member_ids: list[int]) -> QuerySet[TenantEvent]:
    """Events that mention the subject — an envelope of theirs anywhere in the payload — or that they
    made (`metadata.member_id`). One condition on each row: a single pass over the tenant's log
    (a `pk IN (subquery)` form made the planner rescan the subquery per row under a cursor)."""
    return qs.extra(  # noqa: S610 — constant SQL; the subject and ids are parameters
        where=[
            "(jsonb_path_exists(event_data, %s::jsonpath, jsonb_build_object('s', %s::text))"
            " OR (event_metadata->>'member_id') = ANY(%s))"
        ],
        params=[PII_PATH, subject, [str(pk) for pk in member_ids]],
    )


def subject_gather(tenant: Tenant, email: str) -> dict[str, list[dict[str, Any]]]:
    subject = subject_ref(tenant.pk, email)
    store = tenant_log_store(tenant)
    with tenant_context(tenant) as alias:
        members = list(Member.objects.using(alias).filter(email=email).order_by("pk"))
        member_ids = [m.pk for m in members]
        reader = subject_reader(store, subject, alias=alias)  # the key once, not once per event
        rows = subject_events(TenantEvent.objects.using(alias), subject, member_ids).order_by("event_id")
        events = [
            {
                "event_id": e.event_id,
                "occurred_at": e.occurred_at.isoformat(),
                "aggregate_type": e.aggregate_type,
                "aggregate_id": e.aggregate_id,
                "event_type": e.event_type,
                "data": decrypt_for_subject(e.event_data, subject, reader),
                "metadata": e.event_metadata,
            }
            for e in rows.iterator(chunk_size=2000)
        ]
    made = set(member_ids)
    ledger = [e for e in events if e["event_type"].startswith("ledger.") and e["metadata"].get("member_id") in made]
    tenant_rows = Q(target_type="tenant", target_id=str(tenant.pk)) | Q(details__tenant_id=str(tenant.pk))
    mentions = Q(summary__icontains=email) | Q(details_text__icontains=email)
    audit = [
        {
            "occurred_at": a.occurred_at.isoformat(),
            "actor": a.actor_label,
            "action": a.action,
            "target_type": a.target_type,
            "target_id": a.target_id,
            "summary": a.summary,
            "details": a.details,
        }
        for a in AuditEntry.objects.annotate(details_text=Cast("details", TextField()))
        .filter(Q(target_type=TARGET, target_id=subject) | (tenant_rows & mentions))
        .order_by("occurred_at", "id")
    ]
    return {
        "members": [
            {
                "id": m.pk,
                "name": m.name,
                "email": m.email,
                "is_admin": m.is_admin,
                "is_active": m.is_active,
                "created_at": m.created_at.isoformat(),
                "has_password": bool(m.password) and not m.password.startswith("!"),
            }
            for m in members
        ],
        "events": events,
        "ledger_entries": ledger,
        "audit_entries": audit,
    }


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _text(v) for k, v in row.items()})
    return out.getvalue().encode()


def bundle_files(subject_request: SubjectRequest, data: dict[str, list[dict[str, Any]]]) -> dict[str, bytes]:
    files = {
        "subject.json": json.dumps(
            {"request_id": str(subject_request.pk), "tenant": subject_request.tenant.slug, **data},
            indent=2,
            default=str,
        ).encode(),
        **{f"{name}.csv": _csv(rows) for name, rows in data.items()},
    }
    manifest = {
        "request_id": str(subject_request.pk),
        "tenant_id": str(subject_request.tenant_id),
        "subject": subject_request.subject_ref,
        "generated_at": timezone.now().isoformat(),
        "files": {
            name: {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)} for name, body in files.items()
        },
        "rows": {name: len(rows) for name, rows in data.items()},
    }
    files["manifest.json"] = json.dumps(manifest, indent=2).encode()
    return files


def bundle_write(subject_request: SubjectRequest, files: dict[str, bytes]) -> tuple[Path, str, int]:
    folder = Path(settings.PRIVACY_BUNDLE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{subject_request.pk}.zip"
    partial = path.with_suffix(".zip.part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    os.replace(partial, path)  # atomic: a reader sees the old bundle or the whole new one
    body = path.read_bytes()
    return path, hashlib.sha256(body).hexdigest(), len(body)


@register
class SubjectExport(JobHandler):
    kind = EXPORT_KIND
    title = "Data-subject access export"

    def run(self, ctx: JobContext) -> dict[str, Any]:
        subject_request = SubjectRequest.objects.select_related("tenant__placement").get(pk=ctx.payload["request_id"])
        email = request_email(subject_request)
        if not email:
            raise PermanentError("The subject was erased; there is nothing left to export.")
        data = subject_gather(subject_request.tenant, email)
        ctx.progress(1, 2, "gathered")
        path, digest, size = bundle_write(subject_request, bundle_files(subject_request, data))
        ctx.progress(2, 2, "written")
        return {"sha256": digest, "bytes": size, "rows": {k: len(v) for k, v in data.items()}, "path": str(path)}

    def on_succeeded(self, job: Job, result: dict[str, Any]) -> None:
        SubjectRequest.objects.filter(pk=job.payload["request_id"], status=RequestStatus.RUNNING).update(
            status=RequestStatus.READY,
            completed_at=timezone.now(),
            bundle_path=result["path"],
            bundle_sha256=result["sha256"],
            bundle_size=result["bytes"],
            counts=result["rows"],
            error="",
        )
        return None

    def on_failed(self, job: Job, error: str) -> None:
        SubjectRequest.objects.filter(pk=job.payload["request_id"]).update(
            status=RequestStatus.FAILED, error=(error.splitlines() or ["It failed."])[0][:500]
        )
