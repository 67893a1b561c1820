"""JSON API of the compliance module, mounted at /api/compliance/ (readers: Viewer+ and Auditors).

GET   /frameworks                      readiness per framework of the current library
GET   /frameworks/{key}?at=YYYY-MM-DD  the framework report (requirements → controls → latest result)
GET   /controls                        every control with its latest result
GET   /controls/{key}                  one control, its requirements and its history
PATCH /controls/{key}                  owner, applicability + justification, frequency (Admin)
POST  /evaluations                     start an evaluation job (Operator+) → 202 {"job_id": …}
GET   /results/{id}                    one result with its evidence and SHA-256
GET   /tenants/{id}                    the placement-level checks narrowed to one tenant
POST  /frameworks/{key}/exports        build an export as a job (readers) → 202 {"job_id": …}; download at
                                       /compliance/exports/{job_id}/
GET   /access-reviews, POST /access-reviews, POST /access-reviews/{id}/decisions, POST …/complete (Admin)
GET   /incidents, POST /incidents (Operator+)
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from compliance import exports, library, registers, selectors, services
from compliance.checks import registry
from compliance.models import AccessReview, Control, Incident, Result
from core.api import require_api_reader, require_api_role
from core.permissions import Role

router = Router(tags=["compliance"])


class FrameworkOut(Schema):
    key: str
    name: str
    edition: str
    library: str
    readiness: float
    counts: dict[str, int]


class ResultOut(Schema):
    id: int
    control: str
    check_name: str
    status: str
    summary: str
    evidence_sha256: str
    duration_ms: int
    evaluated_at: datetime


class ResultDetailOut(ResultOut):
    evidence: dict[str, Any]


class ControlOut(Schema):
    key: str
    name: str
    check_name: str
    proves: str
    owner: str | None
    applicable: bool
    justification: str
    frequency: str
    latest: ResultOut | None
    requirements: list[str]


class ControlDetailOut(ControlOut):
    history: list[ResultOut]


class ControlPatch(Schema):
    owner: str | None = Field(None, max_length=150, description='Username of an active operator; "" clears it.')
    applicable: bool | None = None
    justification: str | None = Field(None, max_length=2000)
    frequency: Control.Frequency | None = None


class EvaluationIn(Schema):
    controls: list[str] | None = Field(None, max_length=100, description="Control keys; null: every automated one.")


class JobStartedOut(Schema):
    job_id: int


class DecisionOut(Schema):
    operator_id: int | None
    operator: str
    role: str
    decision: str
    decided_by: str
    decided_at: datetime | None


class ReviewOut(Schema):
    id: int
    started_by: str
    started_at: datetime
    completed_at: datetime | None
    decisions: list[DecisionOut]


class DecisionIn(Schema):
    operator_id: int = Field(..., ge=1, le=2**62)
    decision: str = Field(..., pattern="^(confirmed|revoked)$")


class IncidentOut(Schema):
    id: int
    title: str
    detected_at: datetime
    contained_at: datetime | None
    notifiable: bool
    notified_at: datetime | None


class IncidentIn(Schema):
    title: str = Field(..., min_length=1, max_length=200)
    detected_at: datetime
    notifiable: bool = True


class IncidentPatch(Schema):
    contained_at: datetime | None = None
    notified_at: datetime | None = None


class TenantCheckOut(Schema):
    control: str
    state: str
    result_id: int | None
    evaluated_at: datetime | None
    problems: list[dict[str, Any]]


class TenantComplianceOut(Schema):
    tenant: str
    isolation: str
    placement: str | None
    checks: list[TenantCheckOut]


class ExportIn(Schema):
    format: str = Field("zip", pattern="^(zip|csv|json|oscal)$")
    date_from: date | None = Field(None, alias="from")
    date_to: date | None = Field(None, alias="to")


class AtQuery(Schema):
    at: date | None = Field(None, description="Posture at the end of this day (history); default: now.")


def _at(query: AtQuery) -> datetime | None:
    return datetime.combine(query.at, time.max, tzinfo=timezone.get_current_timezone()) if query.at else None


def _result(result: Result | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "id": result.pk,
        "control": result.control.key,
        "check_name": result.check_name,
        "status": result.status,
        "summary": result.summary,
        "evidence_sha256": result.evidence_sha256,
        "duration_ms": result.duration_ms,
        "evaluated_at": result.evaluated_at,
    }


def _control(control: Control, latest: Result | None, refs: list[str]) -> dict[str, Any]:
    return {
        "key": control.key,
        "name": control.name,
        "check_name": control.check_name,
        "proves": registry.proves(control.check_name) if control.check_name else "",
        "owner": control.owner.username if control.owner else None,
        "applicable": control.applicable,
        "justification": control.justification,
        "frequency": control.frequency,
        "latest": _result(latest),
        "requirements": refs,
    }


@router.get("/frameworks", response=list[FrameworkOut], summary="Readiness per framework")
def framework_list(request, query: Query[AtQuery]):
    require_api_reader(request)
    out = []
    latest = selectors.latest_results(_at(query))
    for framework in selectors.frameworks_current():
        status = selectors.framework_status(framework, _at(query), latest)
        out.append(
            {
                "key": framework.key,
                "name": framework.name,
                "edition": framework.edition,
                "library": framework.library.version,
                "readiness": status.readiness,
                "counts": status.counts,
            }
        )
    return out


@router.get("/frameworks/{key}", response=dict, summary="A framework report: requirements, controls, latest results")
def framework_report(request, key: str, query: Query[AtQuery]):
    require_api_reader(request)
    return exports.report_json(selectors.framework_get(key), _at(query))


@router.get(
    "/tenants/{tenant_id}", response=TenantComplianceOut, summary="The checks that concern one tenant's placement"
)
def tenant_compliance(request, tenant_id: uuid.UUID):
    require_api_reader(request)
    tenant = selectors.tenant_get(tenant_id)
    return {
        "tenant": tenant.slug,
        "isolation": tenant.isolation,
        "placement": str(tenant.placement) if tenant.placement else None,
        "checks": [
            {
                "control": row.control.key,
                "state": row.state,
                "result_id": row.result.pk if row.result else None,
                "evaluated_at": row.result.evaluated_at if row.result else None,
                "problems": row.problems,
            }
            for row in selectors.tenant_checks(tenant)
        ],
    }


@router.post("/frameworks/{key}/exports", response={202: JobStartedOut}, summary="Export a report as a job (readers)")
def export_start(request, key: str, payload: ExportIn):
    require_api_reader(request)
    zone = timezone.get_current_timezone()
    job = exports.export_start(
        framework=selectors.framework_get(key),
        fmt=payload.format,
        actor=request.auth,
        period_from=datetime.combine(payload.date_from, time.min, tzinfo=zone) if payload.date_from else None,
        period_to=datetime.combine(payload.date_to, time.max, tzinfo=zone) if payload.date_to else None,
        request=request,
    )
    return Status(202, {"job_id": job.pk})


@router.get("/controls", response=list[ControlOut], summary="Every control with its latest result")
def control_list(request):
    require_api_reader(request)
    return [_control(row.control, row.result, row.refs) for row in selectors.control_rows()]


@router.get("/controls/{key}", response=ControlDetailOut, summary="One control with its result history")
def control_detail(request, key: str, limit: int = Query(50, ge=1, le=500)):
    require_api_reader(request)
    control = selectors.control_get(key)
    history = selectors.control_history(control, limit=limit)
    current = library.library_current()
    refs = [
        f"{r.framework.key}:{r.ref}"
        for r in control.requirements.select_related("framework").filter(framework__library=current)
    ]
    return {**_control(control, history[0] if history else None, refs), "history": [_result(r) for r in history]}


@router.patch("/controls/{key}", response=ControlOut, summary="Change owner, applicability or frequency (Admin)")
def control_patch(request, key: str, payload: ControlPatch):
    require_api_role(request, Role.ADMIN)
    control = services.control_update(
        control=selectors.control_get(key),
        actor=request.auth,
        owner_username=payload.owner,
        applicable=payload.applicable,
        justification=payload.justification,
        frequency=payload.frequency,
        request=request,
    )
    latest = control.results.order_by("-evaluated_at", "-id").first()
    return _control(control, latest, [])


@router.post("/evaluations", response={202: JobStartedOut}, summary="Evaluate controls now (Operator+)")
def evaluation_start(request, payload: EvaluationIn):
    require_api_role(request, Role.OPERATOR)
    job = services.evaluation_start(actor=request.auth, control_keys=payload.controls, request=request)
    return Status(202, {"job_id": job.pk})


@router.get("/results/{result_id}", response=ResultDetailOut, summary="One result with its evidence")
def result_detail(request, result_id: int):
    require_api_reader(request)
    result = selectors.result_get(result_id)
    return {**(_result(result) or {}), "evidence": result.evidence}


def _review(review: AccessReview) -> dict[str, Any]:
    return {
        "id": review.pk,
        "started_by": review.started_by_label,
        "started_at": review.started_at,
        "completed_at": review.completed_at,
        "decisions": [
            {
                "operator_id": d.operator_id,
                "operator": d.operator_label,
                "role": d.role,
                "decision": d.decision,
                "decided_by": d.decided_by_label,
                "decided_at": d.decided_at,
            }
            for d in review.decisions.all()
        ],
    }


@router.get("/access-reviews", response=list[ReviewOut], summary="Access reviews, newest first")
def review_list(request):
    require_api_reader(request)
    return [_review(r) for r in AccessReview.objects.prefetch_related("decisions").order_by("-started_at")[:50]]


@router.post("/access-reviews", response={201: ReviewOut}, summary="Start an access review (Admin)")
def review_start(request):
    require_api_role(request, Role.ADMIN)
    return Status(201, _review(registers.review_start(actor=request.auth, request=request)))


@router.post(
    "/access-reviews/{review_id}/decisions", response=ReviewOut, summary="Confirm or revoke one operator (Admin)"
)
def review_decide(request, review_id: int, payload: DecisionIn):
    require_api_role(request, Role.ADMIN)
    review = registers.review_get(review_id)
    registers.review_decide(
        review=review, operator_id=payload.operator_id, decision=payload.decision, actor=request.auth, request=request
    )
    return _review(review)


@router.post("/access-reviews/{review_id}/complete", response=ReviewOut, summary="Complete an access review (Admin)")
def review_complete(request, review_id: int):
    require_api_role(request, Role.ADMIN)
    return _review(
        registers.review_complete(review=registers.review_get(review_id), actor=request.auth, request=request)
    )


def _incident(i: Incident) -> dict[str, Any]:
    return {
        "id": i.pk,
        "title": i.title,
        "detected_at": i.detected_at,
        "contained_at": i.contained_at,
        "notifiable": i.notifiable,
        "notified_at": i.notified_at,
    }


@router.get("/incidents", response=list[IncidentOut], summary="The incident register")
def incident_list(request):
    require_api_reader(request)
    return [_incident(i) for i in Incident.objects.order_by("-detected_at")[:200]]


@router.post("/incidents", response={201: IncidentOut}, summary="Record an incident (Operator+)")
def incident_create(request, payload: IncidentIn):
    require_api_role(request, Role.OPERATOR)
    incident = registers.incident_record(
        actor=request.auth,
        title=payload.title,
        detected_at=payload.detected_at,
        notifiable=payload.notifiable,
        request=request,
    )
    return Status(201, _incident(incident))


@router.patch(
    "/incidents/{incident_id}", response=IncidentOut, summary="Record containment or notification (Operator+)"
)
def incident_patch(request, incident_id: int, payload: IncidentPatch):
    require_api_role(request, Role.OPERATOR)
    incident = registers.incident_update(
        incident=registers.incident_get(incident_id),
        actor=request.auth,
        contained_at=payload.contained_at,
        notified_at=payload.notified_at,
        request=request,
    )
    return _incident(incident)
