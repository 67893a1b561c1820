"""Erasure by crypto-shredding (Art. 17), saga `privacy.erasure` on the saga engine (docs/sagas.md).

    check_holds → anonymise_member → destroy_keys (POINT OF NO RETURN) → purge_derived
                → tombstone → verify → record_proof

- Before the point of no return everything can be undone: the member rows as they were are kept
  on the request *encrypted with the subject's own key* (`stash`), so compensation restores them.
- `destroy_keys` crypto-shreds the subject in the tenant's log (events.crypto.subject_erase): every
  envelope in events and snapshots becomes "[erased]"; the log and its hash chain are untouched
  (hashes cover the ciphertext). Once the key is gone, the stash can no longer be opened, so every
  earlier compensation is a no-op: only forward recovery remains (open the erasure again; each
  step is idempotent and the scan tells whether anything is left).
- A failure after the point of no return still ends the saga (the engine compensates, which does
  nothing past that point) and marks the request failed with the reason, for a forward rerun.
- The first step's compensation, which always runs last, records the outcome on the request.
Every step is idempotent: a worker may die between any two statements and the retry converges.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from events.crypto import ERASED, Personal, decrypt_tree, encrypt_tree, subject_erase
from events.tenantlog.models import TenantEvent, TenantSnapshot, TenantSubjectKey
from privacy.models import ErasureProof, RequestKind, RequestStatus, SubjectRequest
from privacy.scan import plaintext_scan
from privacy.services import ERASURE_SAGA, hold_refusal, holds_active, request_email
from sagas.models import Saga
from sagas.registry import PermanentStepError, SagaDefinition, StepContext, StepDefinition, saga_register
from tenants import crypto
from tenants.context import tenant_context
from tenants.logs import tenant_log_store
from workspace.models import Member, MemberSession
from workspace.sessions import SessionStore

TOMBSTONE_TYPE = "data_subject"


def _request(ctx: StepContext) -> SubjectRequest:
    return SubjectRequest.objects.select_related("tenant__placement").get(pk=ctx.input["request_id"])


def erased_email(subject: str) -> str:
    return f"erased-{subject[:16]}@erased.invalid"


def _keys_destroyed(subject_request: SubjectRequest) -> bool:
    """Authoritative: the key row in the placement says so (the request's flag may lag a crash)."""
    with tenant_context(subject_request.tenant) as alias:
        return TenantSubjectKey.objects.using(alias).filter(subject_id=subject_request.subject_ref, key=None).exists()


def _names(subject_request: SubjectRequest) -> list[str]:
    if not subject_request.names_enc:
        return []
    return list(crypto.decrypt_json(subject_request.names_enc).get("names", []))


# --- steps -----------------------------------------------------------------------------------------


def check_holds(ctx: StepContext) -> dict[str, Any]:
    subject_request = _request(ctx)
    holds = holds_active(tenant_id=subject_request.tenant_id, subject=subject_request.subject_ref)
    if holds:
        raise PermanentStepError(hold_refusal(holds))
    if not request_email(subject_request) and not subject_request.keys_destroyed_at:
        raise PermanentStepError("The request no longer knows whom to erase.")
    return {"holds_checked_at": timezone.now().isoformat()}


def check_holds_compensate(ctx: StepContext) -> None:
    """Runs last in every compensation: record the outcome on the request."""
    subject_request = _request(ctx)
    saga = Saga.objects.filter(pk=ctx.saga_id).first()
    reason = (saga.error if saga else "") or "The erasure was undone."
    if subject_request.keys_destroyed_at or _keys_destroyed(subject_request):
        reason = f"Past the point of no return: {reason} Open the erasure again to finish it."
    SubjectRequest.objects.filter(pk=subject_request.pk).exclude(status=RequestStatus.COMPLETED).update(
        status=RequestStatus.FAILED, error=reason[:500]
    )


def anonymise_member(ctx: StepContext) -> dict[str, Any]:
    subject_request = _request(ctx)
    subject, email = subject_request.subject_ref, request_email(subject_request)
    store = tenant_log_store(subject_request.tenant)
    if not subject_request.stash:
        # First the stash (encrypted with the subject's key) and the names to scan for, committed on
        # the request; then the rows change. A retry finds the stash and does not lose the originals.
        with tenant_context(subject_request.tenant) as alias:
            rows = [
                {"pk": m.pk, "name": m.name, "email": m.email, "password": m.password, "is_active": m.is_active}
                for m in Member.objects.using(alias).filter(email=email)
            ]
            # Nothing to stash on a forward rerun (the rows were anonymised and the key is gone).
            envelope = encrypt_tree(Personal(subject, rows), store, alias) if rows else None
        names: list[str] = [str(r["name"]) for r in rows]
        if not names:  # a rerun after the point of no return: the names the earlier request knew
            earlier = (
                SubjectRequest.objects.filter(
                    tenant_id=subject_request.tenant_id, subject_ref=subject, kind=RequestKind.ERASURE
                )
                .exclude(pk=subject_request.pk)
                .exclude(names_enc="")
                .first()
            )
            names = _names(earlier) if earlier else []
        SubjectRequest.objects.filter(pk=subject_request.pk).update(
            stash={"rows": envelope, "members": [r["pk"] for r in rows]},
            names_enc=crypto.encrypt_json({"names": names}),
        )
    with tenant_context(subject_request.tenant) as alias:
        changed = (
            Member.objects.using(alias)
            .filter(email=email)
            .update(name=ERASED, email=erased_email(subject), password=make_password(None), is_active=False)
        )
    members = SubjectRequest.objects.get(pk=subject_request.pk).stash.get("members", [])
    return {"members_anonymised": len(members), "members_changed_now": changed}


def anonymise_member_compensate(ctx: StepContext) -> None:
    subject_request = _request(ctx)
    stash = subject_request.stash or {}
    if not stash.get("rows") or _keys_destroyed(subject_request):
        return  # nothing was stashed, or past the point of no return: forward recovery only
    store = tenant_log_store(subject_request.tenant)
    with tenant_context(subject_request.tenant) as alias:
        rows = decrypt_tree(stash["rows"], store, alias=alias)
        for row in rows if isinstance(rows, list) else []:
            Member.objects.using(alias).filter(pk=row["pk"], email=erased_email(subject_request.subject_ref)).update(
                name=row["name"], email=row["email"], password=row["password"], is_active=row["is_active"]
            )
    SubjectRequest.objects.filter(pk=subject_request.pk).update(stash={}, names_enc="")


def destroy_keys(ctx: StepContext) -> dict[str, Any]:
    """THE POINT OF NO RETURN: the subject's key in the tenant's log is destroyed (a tombstone row stays)."""
    subject_request = _request(ctx)
    store = tenant_log_store(subject_request.tenant)
    destroyed = subject_erase(store, subject_request.subject_ref, reason=f"erasure request {subject_request.pk}")
    now = timezone.now()
    SubjectRequest.objects.filter(pk=subject_request.pk, keys_destroyed_at__isnull=True).update(keys_destroyed_at=now)
    # A retry after a crash finds the key already gone: it was destroyed by the earlier attempt.
    return {"keys_destroyed": int(destroyed) or int(ctx.context.get("keys_destroyed", 0))}


def purge_derived(ctx: StepContext) -> dict[str, Any]:
    """Every derived copy that could hold plaintext: sessions, snapshots of their aggregates, bundles."""
    subject_request = _request(ctx)
    member_ids = [int(pk) for pk in (subject_request.stash or {}).get("members", [])]
    with tenant_context(subject_request.tenant) as alias:
        sessions = 0
        for row in MemberSession.objects.using(alias).all():  # RLS: this tenant's sessions only
            data = SessionStore().decode(row.session_data)
            if (data.get("workspace_member") or {}).get("member") in member_ids:
                sessions += MemberSession.objects.using(alias).filter(session_key=row.session_key).delete()[0]
        snapshots = (
            TenantSnapshot.objects.using(alias)
            .filter(aggregate_type="member", aggregate_id__in=[str(pk) for pk in member_ids])
            .delete()[0]
        )
    bundles = 0
    others = SubjectRequest.objects.filter(
        tenant_id=subject_request.tenant_id, subject_ref=subject_request.subject_ref
    ).exclude(pk=subject_request.pk)
    for other in others:
        if other.bundle_path and not other.bundle_purged_at:
            Path(other.bundle_path).unlink(missing_ok=True)
            bundles += 1
    others.update(email_enc="", names_enc="", stash={})
    others.exclude(bundle_path="").filter(bundle_purged_at__isnull=True).update(bundle_purged_at=timezone.now())
    return {"sessions_deleted": sessions, "snapshots_deleted": snapshots, "bundles_deleted": bundles}


def tombstone(ctx: StepContext) -> dict[str, Any]:
    """Tell every consumer of the tenant's log to drop what it derived about this subject."""
    subject_request = _request(ctx)
    store = tenant_log_store(subject_request.tenant)
    with tenant_context(subject_request.tenant) as alias:
        seen = TenantEvent.objects.using(alias).filter(
            aggregate_type=TOMBSTONE_TYPE,
            aggregate_id=subject_request.subject_ref,
            event_type="subject.erased",
            event_data__request_id=str(subject_request.pk),
        )
        if not seen.exists():
            store.append(
                TOMBSTONE_TYPE,
                subject_request.subject_ref,
                "subject.erased",
                {"request_id": str(subject_request.pk), "subject": subject_request.subject_ref},
                metadata={"saga_id": str(ctx.saga_id)},
            )
    return {"tombstone": True}


def verify(ctx: StepContext) -> dict[str, Any]:
    subject_request = _request(ctx)
    needles = [request_email(subject_request), *_names(subject_request)]
    report = plaintext_scan(subject_request.tenant, needles)
    if report.hits:
        raise PermanentStepError(
            f"The plain-text scan still finds the person in {', '.join(report.hits[:5])}; erasure is not complete."
        )
    if report.unreadable:
        raise PermanentStepError(f"The scan could not read {', '.join(report.unreadable[:3])}; erasure is unproven.")
    return {"verification": {"ok": True, **report.as_dict(), "needles": len([n for n in needles if n])}}


def record_proof(ctx: StepContext) -> dict[str, Any]:
    subject_request = _request(ctx)
    with transaction.atomic():
        proof = ErasureProof.objects.filter(request=subject_request).first()
        if proof is None:
            counts = {
                k: ctx.context.get(k, 0)
                for k in ("members_anonymised", "sessions_deleted", "snapshots_deleted", "bundles_deleted")
            }
            body = {
                "request_id": str(subject_request.pk),
                "tenant_id": str(subject_request.tenant_id),
                "subject_hash": hashlib.sha256(subject_request.subject_ref.encode()).hexdigest(),
                "keys_destroyed": int(ctx.context.get("keys_destroyed", 0)),
                "counts": counts,
                "verification": ctx.context.get("verification", {}),
                "completed_at": timezone.now().isoformat(),
            }
            proof = ErasureProof.objects.create(
                request=subject_request,
                tenant_uuid=subject_request.tenant_id,
                subject_hash=body["subject_hash"],
                keys_destroyed=body["keys_destroyed"],
                counts=counts,
                verification=body["verification"],
                proof_sha256=hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest(),
            )
        SubjectRequest.objects.filter(pk=subject_request.pk).update(
            status=RequestStatus.COMPLETED,
            completed_at=timezone.now(),
            email_enc="",
            names_enc="",
            stash={},
            counts=proof.counts,
            error="",
        )
    return {"proof_sha256": proof.proof_sha256}


def _atomic(fn: Callable[[StepContext], Any]) -> Callable[[StepContext], Any]:
    """Each step's control-plane writes commit together (and with the placement's, when the placement
    lives in the control-plane database): a crash mid-step leaves the step's state as it was before."""

    @functools.wraps(fn)
    def run(ctx: StepContext) -> Any:
        with transaction.atomic():
            return fn(ctx)

    return run


ERASURE_STEPS = (
    StepDefinition(
        "check_holds", _atomic(check_holds), _atomic(check_holds_compensate), description="Refuse under a legal hold."
    ),
    StepDefinition("anonymise_member", _atomic(anonymise_member), _atomic(anonymise_member_compensate)),
    StepDefinition(
        "destroy_keys", _atomic(destroy_keys), None, max_attempts=10, description="POINT OF NO RETURN: crypto-shred."
    ),
    StepDefinition("purge_derived", _atomic(purge_derived), None, max_attempts=10),
    StepDefinition("tombstone", _atomic(tombstone), None, max_attempts=10),
    StepDefinition("verify", _atomic(verify), None, max_attempts=10),
    StepDefinition("record_proof", _atomic(record_proof), None, max_attempts=10),
)
POINT_OF_NO_RETURN = "destroy_keys"

saga_register(SagaDefinition(ERASURE_SAGA, "Erase a data subject (crypto-shredding)", ERASURE_STEPS))
