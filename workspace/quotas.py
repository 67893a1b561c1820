"""The plan's quotas, enforced where the tenant writes (inside its tenant_context).

- members: counted live under RLS before a member is added;
- events per day: the tenant's own log, today's rows (index tenant_id, occurred_at);
- storage: what the usage collector last measured — it marks the tenant row (`quotas_exceeded`),
  which the tenant context carries here (the data-plane role may not read the control plane).

Each refusal is one sentence (core.quotas.quota_sentence) as a ValidationError, which the workspace
views already show next to the form. No quota (None) means unlimited.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.utils import timezone

from core.quotas import current_plan, quota_for, quota_sentence
from core.tenancy import active_tenant, current_alias
from events.tenantlog.models import TenantEvent
from workspace.models import Member


def _alias() -> str:
    alias = current_alias()
    if alias is None:
        raise RuntimeError("Quota checks need an open tenant_context.")
    return alias


def check_members(adding: int = 1) -> None:
    limit = quota_for(current_plan(), "members")
    if limit is not None and Member.objects.using(_alias()).count() + adding > limit:
        raise ValidationError(quota_sentence("members", limit))


def check_storage() -> None:
    limit = quota_for(current_plan(), "storage_bytes")
    active = active_tenant()
    if limit is not None and active is not None and "storage_bytes" in active.quotas_exceeded:
        raise ValidationError(quota_sentence("storage_bytes", limit))


def check_events(adding: int = 1) -> None:
    limit = quota_for(current_plan(), "events_per_day")
    if limit is None:
        return
    start = dt.datetime.combine(timezone.now().date(), dt.time.min, tzinfo=dt.UTC)
    today = TenantEvent.objects.using(_alias()).filter(occurred_at__gte=start).count()
    if today + adding > limit:
        raise ValidationError(quota_sentence("events_per_day", limit))
