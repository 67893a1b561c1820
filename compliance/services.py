from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from compliance.models import AuditEntry


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    actor: Any,
    action: str,
    target_type: str = "",
    target_id: object = "",
    summary: str = "",
    request: HttpRequest | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record an operator action. Call inside the transaction that makes the change."""
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEntry.objects.create(
        occurred_at=timezone.now(),
        actor=actor if is_user else None,
        actor_label=actor.get_username() if is_user else (str(actor) if actor else "system"),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        summary=summary[:500],
        ip_address=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request else ""),
        details=details or {},
    )
