"""Reads for the saga monitor and the API."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from core.errors import NotFound
from core.permissions import Role, check_role
from events.models import Event
from sagas.models import Saga, SagaState
from sagas.registry import saga_types

AGE_CHOICES = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "older-1h": ("Older than an hour", timedelta(hours=1)),
}


def saga_list(
    *, saga_type: str = "", state: str = "", tenant: str = "", age: str = "", now: Any = None
) -> QuerySet[Saga]:
    qs = Saga.objects.all()
    if saga_type:
        qs = qs.filter(saga_type=saga_type)
    if state in SagaState.values:
        qs = qs.filter(state=state)
    if tenant:
        tenant = tenant.strip()
        condition = Q(tenant_label__icontains=tenant)
        try:
            condition |= Q(tenant_id=uuid.UUID(tenant))
        except ValueError:
            pass
        qs = qs.filter(condition)
    if age in AGE_CHOICES:
        cutoff = (now or timezone.now()) - AGE_CHOICES[age][1]
        qs = qs.filter(created_at__lt=cutoff) if age.startswith("older") else qs.filter(created_at__gte=cutoff)
    return qs.order_by("-created_at", "-id")


def saga_counts_by_state() -> dict[str, int]:
    counts = dict(Saga.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    return {state: counts.get(state, 0) for state in SagaState.values}


def saga_types_in_use() -> list[str]:
    used = set(Saga.objects.values_list("saga_type", flat=True).distinct())
    return sorted(used | set(saga_types()))


def saga_get(*, saga_id: Any, actor: Any) -> Saga:
    """The saga for an operator who may see sagas (Viewer+), or NotFound; a malformed uuid is not found either."""
    check_role(actor, Role.VIEWER)
    try:
        return Saga.objects.get(id=saga_id)
    except (Saga.DoesNotExist, ValueError, ValidationError):
        raise NotFound("No such saga.") from None


def saga_progress(saga: Saga) -> dict[str, int]:
    steps = list(saga.steps.all())
    done = sum(1 for s in steps if s.state == "completed")
    failed = sum(1 for s in steps if s.state in ("failed", "compensated", "compensating"))
    return {"done": done, "total": len(steps), "failed": failed}


def saga_events(saga: Saga, limit: int = 200) -> list[Any]:
    """The saga's transitions from the control-plane event log, oldest first."""
    return list(Event.objects.filter(aggregate_type="saga", aggregate_id=str(saga.id)).order_by("event_id")[:limit])
