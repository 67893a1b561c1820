"""Screens of the registers the checks read: access reviews (check `access_review`) and the incident
register (check `incidents_notified`), plus the Admin's sign-in review. Readers see them; Admins run
reviews, Operators record incidents — checked here, server-side.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from compliance import registers, services
from compliance.models import AccessDecision, AccessReview, Incident
from core.errors import ApplicationError, InvalidInput
from core.http import OperatorRequest
from core.permissions import Role, has_role, reader_required, role_required

# --- access reviews ----------------------------------------------------------------------------


@require_GET
@reader_required
def review_list(request: OperatorRequest) -> HttpResponse:
    reviews = AccessReview.objects.order_by("-started_at")[:50]
    return render(
        request,
        "compliance/reviews.html",
        {"reviews": reviews, "can_admin": has_role(request.user, Role.ADMIN)},
    )


@require_POST
@role_required(Role.ADMIN)
def review_start(request: OperatorRequest) -> HttpResponse:
    try:
        review = registers.review_start(actor=request.user, request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("compliance:reviews")
    return redirect("compliance:review", review_id=review.pk)


@require_GET
@reader_required
def review_detail(request: OperatorRequest, review_id: int) -> HttpResponse:
    review = registers.review_get(review_id)
    decisions = list(review.decisions.all())
    return render(
        request,
        "compliance/review.html",
        {
            "review": review,
            "decisions": decisions,
            "pending": sum(1 for d in decisions if d.decision == AccessDecision.Decision.PENDING),
            "can_admin": has_role(request.user, Role.ADMIN),
        },
    )


@require_POST
@role_required(Role.ADMIN)
def review_decide(request: OperatorRequest, review_id: int) -> HttpResponse:
    review = registers.review_get(review_id)
    try:
        registers.review_decide(
            review=review,
            operator_id=request.POST.get("operator", ""),
            decision=request.POST.get("decision", ""),
            actor=request.user,
            request=request,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("compliance:review", review_id=review.pk)


@require_POST
@role_required(Role.ADMIN)
def review_complete(request: OperatorRequest, review_id: int) -> HttpResponse:
    review = registers.review_get(review_id)
    try:
        registers.review_complete(review=review, actor=request.user, request=request)
        messages.success(request, "Access review completed.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("compliance:review", review_id=review.pk)


@require_POST
@role_required(Role.ADMIN)
def signin_review(request: OperatorRequest) -> HttpResponse:
    try:
        services.signin_review_record(actor=request.user, note=request.POST.get("note", ""), request=request)
        messages.success(request, "Recorded that failed sign-ins were reviewed.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("compliance:control", key="sign-in-monitoring")


# --- incidents ---------------------------------------------------------------------------------


def _when(value: str, what: str) -> datetime | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value[:32])
    except ValueError:
        raise InvalidInput(f"The {what} time is written YYYY-MM-DDTHH:MM.") from None
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


@require_GET
@reader_required
def incident_list(request: OperatorRequest) -> HttpResponse:
    return render(
        request,
        "compliance/incidents.html",
        {
            "incidents": Incident.objects.order_by("-detected_at")[:100],
            "can_operate": has_role(request.user, Role.OPERATOR),
        },
    )


@require_POST
@role_required(Role.OPERATOR)
def incident_create(request: OperatorRequest) -> HttpResponse:
    try:
        detected = _when(request.POST.get("detected_at", ""), "detection")
        if detected is None:
            raise InvalidInput("Give the detection time.")
        registers.incident_record(
            actor=request.user,
            title=request.POST.get("title", ""),
            detected_at=detected,
            notifiable=request.POST.get("notifiable") == "yes",
            request=request,
        )
        messages.success(request, "Incident recorded.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("compliance:incidents")


@require_POST
@role_required(Role.OPERATOR)
def incident_update(request: OperatorRequest, incident_id: int) -> HttpResponse:
    incident = registers.incident_get(incident_id)
    try:
        registers.incident_update(
            incident=incident,
            actor=request.user,
            contained_at=_when(request.POST.get("contained_at", ""), "containment"),
            notified_at=_when(request.POST.get("notified_at", ""), "notification"),
            request=request,
        )
        messages.success(request, "Incident updated.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("compliance:incidents")
