"""JSON API of the audit trail, mounted at /api/audit (Operator+: it names people and addresses).

No `from __future__ import annotations`: ninja reads the annotations at runtime.
"""

from datetime import date, datetime

from ninja import Router, Schema

from audit.selectors import AuditFilters, audit_page
from core.api import require_api_role
from core.errors import InvalidInput
from core.permissions import Role, is_auditor

router = Router(tags=["audit"])


class AuditEntryOut(Schema):
    id: int
    occurred_at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    summary: str
    ip_address: str | None
    details: dict


class AuditPageOut(Schema):
    entries: list[AuditEntryOut]
    next: str | None = None


@router.get("", response=AuditPageOut, summary="Audit trail, newest first (Operator+)")
def audit_list(
    request,
    actor: str = "",
    action: str = "",
    target_type: str = "",
    target_id: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    before: str = "",
    limit: int = 100,
):
    """Keyset-paginated: pass the returned `next` as `before` for the following page."""
    if not is_auditor(request.auth):  # an Auditor reads the trail; among operators, Operator+
        require_api_role(request, Role.OPERATOR)
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be between 1 and 500.")
    if date_from and date_to and date_from > date_to:
        raise InvalidInput("date_from must be on or before date_to.")
    filters = AuditFilters(
        actor=actor, action=action, target_type=target_type, target_id=target_id, date_from=date_from, date_to=date_to
    )
    page = audit_page(filters, before=before, size=limit)
    return {
        "entries": [
            {
                "id": e.pk,
                "occurred_at": e.occurred_at,
                "actor": e.actor_label,
                "action": e.action,
                "target_type": e.target_type,
                "target_id": e.target_id,
                "summary": e.summary,
                "ip_address": e.ip_address,
                "details": e.details,
            }
            for e in page.entries
        ],
        "next": page.older,
    }
