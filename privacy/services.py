"""Writes of the privacy app: open requests, download links, legal holds. Each audited, one transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, SystemActor, actor_label, actor_user
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.personal_data import subject_ref
from jobs.services import job_create
from privacy.models import DownloadLink, LegalHold, RequestKind, RequestStatus, SubjectRequest
from sagas.services import saga_start
from tenants import crypto
from tenants.models import Tenant

EXPORT_KIND = "privacy.dsar_export"
ERASURE_SAGA = "privacy.erasure"
TARGET = "data_subject"


def clean_email(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput("The subject's email must be text.")
    email = value.strip().lower()
    if "\x00" in email or len(email) > 254:
        raise InvalidInput("The subject's email is not a valid email address.")
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput("The subject's email is not a valid email address.") from None
    return email


def request_email(subject_request: SubjectRequest) -> str:
    """The subject's email, or "" once the subject was erased (the ciphertext is wiped then)."""
    if not subject_request.email_enc:
        return ""
    return str(crypto.decrypt_json(subject_request.email_enc).get("email", ""))


def holds_active(*, tenant_id: Any, subject: str) -> list[LegalHold]:
    now = timezone.now()
    return [
        hold
        for hold in LegalHold.objects.filter(tenant_id=tenant_id, released_at__isnull=True).order_by("created_at")
        if (hold.until is None or hold.until > now) and hold.subject_ref in ("", subject)
    ]


def hold_refusal(holds: list[LegalHold]) -> str:
    hold = holds[0]
    scope = "this person" if hold.subject_ref else "this tenant"
    return f"A legal hold on {scope} (“{hold.reason}”) stops erasure until it is released."


def _usable_tenant(tenant: Tenant) -> None:
    if tenant.placement_id is None or tenant.status in (Tenant.Status.DELETED, Tenant.Status.PENDING):
        raise Conflict(f"Tenant {tenant.slug} has no data placement to search.")


def request_open(
    *,
    tenant: Tenant,
    email: Any,
    kind: str,
    actor: Actor,
    source: str = "operator",
    request: HttpRequest | None = None,
) -> SubjectRequest:
    """Open an access or erasure request for one subject of one tenant and start its work."""
    if kind not in RequestKind.values:
        raise InvalidInput("The request kind must be access or erasure.")
    email = clean_email(email)
    _usable_tenant(tenant)
    subject = subject_ref(tenant.pk, email)
    now = timezone.now()
    if kind == RequestKind.ERASURE:
        holds = holds_active(tenant_id=tenant.pk, subject=subject)
        if holds:
            with transaction.atomic():  # the refusal is evidence too
                audit_record(
                    actor=actor,
                    action=AuditAction.PRIVACY_REQUEST_REFUSED,
                    target_type=TARGET,
                    target_id=subject,
                    summary=f"Erasure in {tenant.slug} refused: legal hold",
                    request=request,
                    details={"tenant_id": str(tenant.pk), "hold_id": holds[0].pk},
                )
            raise Conflict(hold_refusal(holds))
        if tenant.owner_email and tenant.owner_email.strip().lower() == email:
            # The owner of record is the operator's contact under the tenant's contract (control
            # plane, not tenant data): erasing it is offboarding the tenant, which clears it.
            raise Conflict(
                f"{email} is the owner of record of {tenant.slug}; the contract needs that contact, "
                "so it is erased by offboarding the tenant (Delete on the tenant page), not by a request."
            )
    needs_approval = (
        kind == RequestKind.ERASURE
        and bool(settings.PRIVACY_ERASURE_REQUIRE_APPROVAL)
        and not isinstance(actor, SystemActor)
    )
    with transaction.atomic():
        if kind == RequestKind.ERASURE and (
            SubjectRequest.objects.select_for_update()
            .filter(
                tenant=tenant,
                subject_ref=subject,
                kind=RequestKind.ERASURE,
                status__in=(RequestStatus.RUNNING, RequestStatus.AWAITING),
            )
            .exists()
        ):
            raise Conflict("An erasure of this person is already running or awaiting approval.")
        subject_request = SubjectRequest.objects.create(
            kind=kind,
            tenant=tenant,
            subject_ref=subject,
            email_enc=crypto.encrypt_json({"email": email}),
            source=source[:20],
            opened_at=now,
            due_at=now + dt.timedelta(days=settings.PRIVACY_SLA_DAYS),
            opened_by=actor_user(actor),
            opened_by_label=actor_label(actor),
            status=RequestStatus.AWAITING if needs_approval else RequestStatus.RUNNING,
        )
        access = kind == RequestKind.ACCESS
        if access:
            action = AuditAction.PRIVACY_REQUEST_OPEN
        else:
            action = AuditAction.PRIVACY_ERASURE_PROPOSE if needs_approval else AuditAction.PRIVACY_ERASURE_START
        audit_record(
            actor=actor,
            action=action,
            target_type=TARGET,
            target_id=subject,
            summary=f"{subject_request.get_kind_display()} request in {tenant.slug}",
            request=request,
            details={"tenant_id": str(tenant.pk), "request_id": str(subject_request.pk), "source": source},
        )
        if access:
            subject_request.job = job_create(
                kind=EXPORT_KIND,
                payload={"request_id": str(subject_request.pk)},
                group=("privacy.request", subject_request.pk),
                actor=actor,
            )
        elif not needs_approval:
            subject_request.saga = _erasure_saga(subject_request, actor)
        subject_request.save(update_fields=["job", "saga"])
    return subject_request


def _erasure_saga(subject_request: SubjectRequest, actor: Actor) -> Any:
    tenant = subject_request.tenant
    return saga_start(
        saga_type=ERASURE_SAGA,
        input={"request_id": str(subject_request.pk)},
        tenant_id=tenant.pk,
        tenant_label=tenant.slug,
        idempotency_key=f"erasure:{subject_request.pk}",
        actor=actor,
    )


def _awaiting(subject_request: SubjectRequest, actor: Actor) -> SubjectRequest:
    """The request, locked, if it awaits a second Admin and `actor` may decide it."""
    locked = SubjectRequest.objects.select_for_update().select_related("tenant").get(pk=subject_request.pk)
    if locked.status != RequestStatus.AWAITING:
        raise Conflict("This erasure is not awaiting approval.")
    user = actor_user(actor)
    if user is None or user.pk == locked.opened_by_id:
        raise Forbidden("A second Admin must decide this erasure; whoever opened it cannot.")
    return locked


def _decision_audit(
    locked: SubjectRequest, actor: Actor, action: AuditAction, verb: str, request: HttpRequest | None
) -> None:
    audit_record(
        actor=actor,
        action=action,
        target_type=TARGET,
        target_id=locked.subject_ref,
        summary=f"Erasure in {locked.tenant.slug} {verb}",
        request=request,
        details={"tenant_id": str(locked.tenant_id), "request_id": str(locked.pk)},
    )


def erasure_approve(
    *, subject_request: SubjectRequest, actor: Actor, request: HttpRequest | None = None
) -> SubjectRequest:
    """Four eyes: a second Admin starts an erasure someone else opened (legal holds are checked again)."""
    with transaction.atomic():
        locked = _awaiting(subject_request, actor)
        holds = holds_active(tenant_id=locked.tenant_id, subject=locked.subject_ref)
        if holds:
            raise Conflict(hold_refusal(holds))
        locked.status = RequestStatus.RUNNING
        locked.saga = _erasure_saga(locked, actor)
        locked.save(update_fields=["status", "saga"])
        _decision_audit(locked, actor, AuditAction.PRIVACY_ERASURE_APPROVE, "approved", request)
    return locked


def erasure_reject(
    *, subject_request: SubjectRequest, actor: Actor, request: HttpRequest | None = None
) -> SubjectRequest:
    """A second Admin refuses an erasure someone else opened; nothing was changed."""
    with transaction.atomic():
        locked = _awaiting(subject_request, actor)
        locked.status = RequestStatus.REFUSED
        locked.completed_at = timezone.now()
        locked.error = "Rejected by a second Admin."
        locked.save(update_fields=["status", "completed_at", "error"])
        _decision_audit(locked, actor, AuditAction.PRIVACY_ERASURE_REJECT, "rejected", request)
    return locked


# --- download links -------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_create(*, subject_request: SubjectRequest, actor: Actor, request: HttpRequest | None = None) -> str:
    """A single-use link to the bundle, valid PRIVACY_LINK_TTL_SECONDS; returns the token (shown once)."""
    if subject_request.kind != RequestKind.ACCESS or subject_request.status != RequestStatus.READY:
        raise Conflict("Only a finished access request has a bundle to download.")
    if subject_request.bundle_purged_at or not subject_request.bundle_path:
        raise Conflict("This request's bundle was deleted; open a new request.")
    token = "dsar_" + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        DownloadLink.objects.create(
            request=subject_request,
            token_hash=_token_hash(token),
            created_at=now,
            expires_at=now + dt.timedelta(seconds=settings.PRIVACY_LINK_TTL_SECONDS),
            created_by_label=actor_label(actor),
        )
        audit_record(
            actor=actor,
            action=AuditAction.PRIVACY_LINK_CREATE,
            target_type=TARGET,
            target_id=subject_request.subject_ref,
            summary=f"Download link for request {subject_request.pk}",
            request=request,
            details={"request_id": str(subject_request.pk), "tenant_id": str(subject_request.tenant_id)},
        )
    return token


def link_redeem(*, token: Any, request: HttpRequest | None = None) -> tuple[SubjectRequest, Path]:
    """Use a link once: the bundle's path, or NotFound for an unknown, used or expired link."""
    if not isinstance(token, str) or len(token) > 100 or "\x00" in token:
        raise NotFound("This download link is not valid.")
    now = timezone.now()
    with transaction.atomic():
        link = DownloadLink.objects.select_related("request").filter(token_hash=_token_hash(token)).first()
        # Claimed by a conditional UPDATE: two simultaneous clicks download once.
        used = DownloadLink.objects.filter(
            token_hash=_token_hash(token), used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
        if link is None or not used:
            raise NotFound("This download link is not valid, was used already or has expired.")
        subject_request = link.request
        path = Path(subject_request.bundle_path)
        if subject_request.bundle_purged_at or not path.is_file():
            raise NotFound("This bundle was deleted.")
        audit_record(
            actor=None,
            action=AuditAction.PRIVACY_DOWNLOAD,
            target_type=TARGET,
            target_id=subject_request.subject_ref,
            summary=f"Bundle of request {subject_request.pk} downloaded",
            request=request,
            details={
                "request_id": str(subject_request.pk),
                "link_id": link.pk,
                "sha256": subject_request.bundle_sha256,
            },
        )
    return subject_request, path


# --- legal holds --------------------------------------------------------------------------------


def hold_place(
    *,
    tenant: Tenant,
    reason: Any,
    actor: Actor,
    email: Any = "",
    until: dt.datetime | None = None,
    request: HttpRequest | None = None,
) -> LegalHold:
    if not isinstance(reason, str) or not reason.strip() or "\x00" in reason:
        raise InvalidInput("Please say why the data must be kept.")
    if len(reason) > 300:
        raise InvalidInput("The reason must be at most 300 characters.")
    subject = subject_ref(tenant.pk, clean_email(email)) if email else ""
    if until is not None and timezone.is_naive(until):
        until = timezone.make_aware(until, dt.UTC)
    if until is not None and until <= timezone.now():
        raise InvalidInput("A hold must end in the future, or never.")
    with transaction.atomic():
        hold = LegalHold.objects.create(
            tenant=tenant, subject_ref=subject, reason=reason.strip(), created_by_label=actor_label(actor), until=until
        )
        audit_record(
            actor=actor,
            action=AuditAction.PRIVACY_HOLD_PLACE,
            target_type="legal_hold",
            target_id=hold.pk,
            summary=f"Legal hold on {'a subject of ' if subject else ''}{tenant.slug}",
            request=request,
            details={"tenant_id": str(tenant.pk), "subject_ref": subject, "reason": hold.reason},
        )
    return hold


def hold_release(*, hold_id: Any, actor: Actor, request: HttpRequest | None = None) -> LegalHold:
    if not isinstance(hold_id, int) or not 0 < hold_id < 2**63:
        raise NotFound("No such legal hold.")
    with transaction.atomic():
        hold = LegalHold.objects.select_for_update().filter(pk=hold_id).first()
        if hold is None:
            raise NotFound("No such legal hold.")
        if hold.released_at is not None:
            raise Conflict("This hold was released already.")
        hold.released_at = timezone.now()
        hold.released_by_label = actor_label(actor)
        hold.save(update_fields=["released_at", "released_by_label"])
        audit_record(
            actor=actor,
            action=AuditAction.PRIVACY_HOLD_RELEASE,
            target_type="legal_hold",
            target_id=hold.pk,
            summary="Legal hold released",
            request=request,
            details={"tenant_id": str(hold.tenant_id)},
        )
    return hold
