"""The small registers checks read: access reviews (check `access_review`) and incidents (`incidents_notified`).

Access review: an Admin starts a review, which lists every active operator with their role; an
Admin confirms or revokes each one — never their own (four eyes) — and completes it once nothing
is pending. Revoking removes the operator's role groups at once (the API and the dashboard check
the role on every request, so access ends with the next one).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from compliance.checks.access import active_operators
from compliance.models import AccessDecision, AccessReview, Incident
from core.actors import Actor, actor_label, actor_user
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.permissions import AUDITOR_GROUP, ROLE_BY_GROUP, Role, check_role


def review_get(review_id: Any) -> AccessReview:
    try:
        pk = int(review_id)
    except (TypeError, ValueError):
        raise NotFound("No such access review.") from None
    review = AccessReview.objects.filter(pk=pk).first() if 0 < pk < 2**63 else None
    if review is None:
        raise NotFound("No such access review.")
    return review


def review_start(*, actor: Actor, request: HttpRequest | None = None) -> AccessReview:
    check_role(actor, Role.ADMIN)
    with transaction.atomic():
        if AccessReview.objects.select_for_update().filter(completed_at__isnull=True).exists():
            raise Conflict("An access review is already open; finish it first.")
        review = AccessReview.objects.create(
            started_by=actor_user(actor), started_by_label=actor_label(actor), started_at=timezone.now()
        )
        operators = active_operators()
        AccessDecision.objects.bulk_create(
            [AccessDecision(review=review, operator=u, operator_label=u.username, role=role) for u, role in operators]
        )
        audit_record(
            actor=actor,
            action=AuditAction.ACCESS_REVIEW_START,
            target_type="access_review",
            target_id=review.pk,
            summary=f"Started access review #{review.pk} of {len(operators)} operators",
            request=request,
        )
    return review


def review_decide(
    *, review: AccessReview, operator_id: Any, decision: str, actor: Actor, request: HttpRequest | None = None
) -> AccessDecision:
    """Confirm or revoke one operator's role in an open review (Admin, never for themselves)."""
    check_role(actor, Role.ADMIN)
    if decision not in (AccessDecision.Decision.CONFIRMED, AccessDecision.Decision.REVOKED):
        raise InvalidInput("The decision must be confirmed or revoked.")
    try:
        operator_pk = int(operator_id)
    except (TypeError, ValueError):
        raise NotFound("That operator is not in this review.") from None
    with transaction.atomic():
        locked = AccessReview.objects.select_for_update().get(pk=review.pk)
        if locked.completed_at is not None:
            raise Conflict("This access review is completed.")
        row = AccessDecision.objects.select_for_update().filter(review=locked, operator_id=operator_pk).first()
        if row is None:
            raise NotFound("That operator is not in this review.")
        user = actor_user(actor)
        if user is not None and row.operator_id == user.pk:
            raise Forbidden("Nobody reviews their own access; another Admin must decide this one.")
        if row.decision != AccessDecision.Decision.PENDING:
            raise Conflict(f"{row.operator_label} was already {row.decision}.")
        row.decision = decision
        row.decided_by_label = actor_label(actor)
        row.decided_at = timezone.now()
        row.save(update_fields=["decision", "decided_by_label", "decided_at"])
        if decision == AccessDecision.Decision.REVOKED and row.operator_id is not None:
            target = User.objects.get(pk=row.operator_id)
            target.groups.remove(*Group.objects.filter(name__in=list(ROLE_BY_GROUP)))
            if target.is_superuser:
                User.objects.filter(pk=target.pk).update(is_superuser=False)
        audit_record(
            actor=actor,
            action=AuditAction.ACCESS_REVIEW_DECIDE,
            target_type="user",
            target_id=row.operator_id or "",
            summary=f"Access review #{locked.pk}: {decision} {row.operator_label} ({row.role})",
            request=request,
            details={"review": locked.pk, "username": row.operator_label, "role": row.role, "decision": decision},
        )
    return row


def review_complete(*, review: AccessReview, actor: Actor, request: HttpRequest | None = None) -> AccessReview:
    check_role(actor, Role.ADMIN)
    with transaction.atomic():
        locked = AccessReview.objects.select_for_update().get(pk=review.pk)
        if locked.completed_at is not None:
            raise Conflict("This access review is already completed.")
        pending = locked.decisions.filter(decision=AccessDecision.Decision.PENDING).count()
        if pending:
            raise Conflict(f"{pending} operators still wait for a decision.")
        locked.completed_at = timezone.now()
        locked.save(update_fields=["completed_at"])
        audit_record(
            actor=actor,
            action=AuditAction.ACCESS_REVIEW_COMPLETE,
            target_type="access_review",
            target_id=locked.pk,
            summary=f"Completed access review #{locked.pk}",
            request=request,
        )
    return locked


def _text(value: str, what: str, limit: int) -> str:
    if not isinstance(value, str) or "\x00" in value or not value.strip() or len(value) > limit:
        raise InvalidInput(f"The {what} must be 1 to {limit} characters of text.")
    return value.strip()


def incident_get(incident_id: Any) -> Incident:
    try:
        pk = int(incident_id)
    except (TypeError, ValueError):
        raise NotFound("No such incident.") from None
    incident = Incident.objects.filter(pk=pk).first() if 0 < pk < 2**63 else None
    if incident is None:
        raise NotFound("No such incident.")
    return incident


def _utc(value: datetime, what: str) -> datetime:
    """An aware time in UTC (any offset the client sent, naive = the server's zone); one sentence if absurd."""
    try:
        aware = timezone.make_aware(value) if timezone.is_naive(value) else value
        utc = aware.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidInput(f"The {what} time is not a usable date.") from None
    if utc.year < 2000:
        raise InvalidInput(f"The {what} time must be after the year 2000.")
    return utc


def _times(detected_at: datetime, **others: datetime | None) -> None:
    now = timezone.now()
    if detected_at > now:
        raise InvalidInput("The detection time cannot be in the future.")
    for name, value in others.items():
        if value is not None and (value < detected_at or value > now):
            raise InvalidInput(f"The {name} time must be between detection and now.")


def incident_record(
    *, actor: Actor, title: str, detected_at: datetime, notifiable: bool, request: HttpRequest | None = None
) -> Incident:
    check_role(actor, Role.OPERATOR)
    title = _text(title, "title", 200)
    detected_at = _utc(detected_at, "detection")
    _times(detected_at)
    with transaction.atomic():
        incident = Incident.objects.create(
            title=title, detected_at=detected_at, notifiable=notifiable, created_by_label=actor_label(actor)
        )
        audit_record(
            actor=actor,
            action=AuditAction.INCIDENT_RECORD,
            target_type="incident",
            target_id=incident.pk,
            summary=f"Recorded incident: {title}",
            request=request,
            details={"detected_at": detected_at.isoformat(), "notifiable": notifiable},
        )
    return incident


def incident_update(
    *,
    incident: Incident,
    actor: Actor,
    contained_at: datetime | None = None,
    notified_at: datetime | None = None,
    request: HttpRequest | None = None,
) -> Incident:
    """Record when an incident was contained and when the authority was notified (each set once)."""
    check_role(actor, Role.OPERATOR)
    contained_at = _utc(contained_at, "containment") if contained_at is not None else None
    notified_at = _utc(notified_at, "notification") if notified_at is not None else None
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        changes: dict[str, Any] = {}
        for name, value in (("contained_at", contained_at), ("notified_at", notified_at)):
            if value is None:
                continue
            if getattr(locked, name) is not None:
                raise Conflict(f"The {name.replace('_at', '')} time is already recorded.")
            changes[name] = value
        if not changes:
            raise InvalidInput("Give a containment or a notification time.")
        _times(locked.detected_at, **{k.replace("_at", ""): v for k, v in changes.items()})
        for name, value in changes.items():
            setattr(locked, name, value)
        locked.save(update_fields=list(changes))
        audit_record(
            actor=actor,
            action=AuditAction.INCIDENT_UPDATE,
            target_type="incident",
            target_id=locked.pk,
            summary=f"Updated incident: {locked.title}",
            request=request,
            details={k: v.isoformat() for k, v in changes.items()},
        )
    return locked


def auditor_grant(*, username: str, actor: Actor, revoke: bool = False) -> User:
    """Make an existing user an Auditor (staff, read-only: compliance, audit trail, event log), or stop it.

    An Auditor holds no operator role: granting takes every role group away, so the read-only
    promise holds."""
    user = User.objects.filter(username=username[:150]).first()
    if user is None:
        raise NotFound(f"No user is called {username[:60]}.")
    with transaction.atomic():
        group, _ = Group.objects.get_or_create(name=AUDITOR_GROUP)
        if revoke:
            user.groups.remove(group)
        else:
            user.groups.remove(*Group.objects.filter(name__in=list(ROLE_BY_GROUP)))
            user.groups.add(group)
            User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=False)
        audit_record(
            actor=actor,
            action=AuditAction.AUDITOR_REVOKE if revoke else AuditAction.AUDITOR_GRANT,
            target_type="user",
            target_id=user.pk,
            summary=f"{'Revoked' if revoke else 'Granted'} Auditor access for {user.username}",
            details={"username": user.username},
        )
    return user
