"""Reads of the privacy app: access-scoped getters, filtered lists, the record of processing."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from core.errors import NotFound
from core.permissions import Role, check_role
from core.personal_data import Category, registry
from privacy.models import OPEN_STATUSES, LegalHold, RequestKind, RequestStatus, SubjectRequest

PROCESSING_COLUMNS = ("kind", "owner", "field", "category", "purpose", "subjects", "legal_basis", "retention",
                      "erasure", "location")  # fmt: skip


def request_get(*, request_id: Any, actor: Any) -> SubjectRequest:
    """A request for an operator who may see requests (Viewer+), or NotFound."""
    check_role(actor, Role.VIEWER)
    try:
        pk = uuid.UUID(str(request_id))
    except ValueError:
        raise NotFound("No such request.") from None
    found = SubjectRequest.objects.select_related("tenant", "job", "saga").filter(pk=pk).first()
    if found is None:
        raise NotFound("No such request.")
    return found


def request_list(*, kind: str = "", status: str = "", tenant: str = "") -> QuerySet[SubjectRequest]:
    qs = SubjectRequest.objects.select_related("tenant", "job", "saga")
    if kind in RequestKind.values:
        qs = qs.filter(kind=kind)
    if status == "overdue":
        qs = qs.filter(status__in=OPEN_STATUSES, due_at__lt=timezone.now())
    elif status in RequestStatus.values:
        qs = qs.filter(status=status)
    if tenant:
        qs = qs.filter(tenant__slug=tenant[:40])
    return qs.order_by("-opened_at", "-id")


def request_counts() -> dict[str, int]:
    now = timezone.now()
    open_qs = SubjectRequest.objects.filter(status__in=OPEN_STATUSES)
    return {
        "open": open_qs.count(),
        "overdue": open_qs.filter(due_at__lt=now).count(),
        "ready": SubjectRequest.objects.filter(status=RequestStatus.READY).count(),
        "completed": SubjectRequest.objects.filter(status=RequestStatus.COMPLETED).count(),
    }


def hold_list(*, active_only: bool = False) -> QuerySet[LegalHold]:
    qs = LegalHold.objects.select_related("tenant").order_by("-created_at")
    if active_only:
        qs = qs.filter(released_at__isnull=True)
    return qs


def processing_record(*, category: str = "") -> list[dict[str, Any]]:
    """Art. 30: one row per declared personal field (core.personal_data)."""
    rows = [entry.as_dict() for entry in registry()]
    if category in Category.values:
        rows = [r for r in rows if r["category"] == category]
    labels = dict(Category.choices)
    for row in rows:
        row["category_label"] = labels.get(row["category"], row["category"])
    return rows
