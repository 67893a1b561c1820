"""Writing the audit trail: one function, called inside the transaction that makes the change."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.models import AuditEntry
from core.actors import Actor, actor_label, actor_user
from core.http import client_ip, user_agent


def audit_record(
    *,
    actor: Actor | None,
    action: AuditAction,
    target_type: str = "",
    target_id: object = "",
    summary: str = "",
    request: HttpRequest | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record who did what to which object, from where. Never pass a secret in `details`."""
    return AuditEntry.objects.create(
        occurred_at=timezone.now(),
        actor=actor_user(actor),
        actor_label=actor_label(actor),
        action=AuditAction(action).value,
        target_type=target_type,
        target_id=str(target_id),
        summary=summary[:500],
        ip_address=client_ip(request),
        user_agent=user_agent(request),
        details=details or {},
    )
