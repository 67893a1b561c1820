"""The plan's quotas, enforced where the tenant writes (inside its tenant_context).

- members: counted live under RLS before a member is added;
- events per day: the tenant's own log, today's rows (index tenant_id, occurred_at);
- storage: the last figure the usage collector measured, which it leaves in the `tenant_limits`
  cache (the one cache the data-plane role may read) under `storage_key(tenant_id)`.

Each refusal is one sentence (core.quotas.quota_sentence) as a ValidationError, which the workspace
views already show next to the form. No quota (None) means unlimited.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.quotas import current_plan, quota_for, quota_sentence
from core.tenancy import current_alias, current_tenant_id
from events.tenantlog.models import TenantEvent
from workspace.models import Member

STORAGE_CACHE = "tenant_limits"


def storage_key(tenant_id: Any) -> str:
    return f"usage:storage:{tenant_id}"


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
    if limit is None:
        return
    used = caches[STORAGE_CACHE].get(storage_key(current_tenant_id()))
    if used is not None and int(used) >= limit:
        raise ValidationError(quota_sentence("storage_bytes", limit))


def check_events(adding: int = 1) -> None:
    limit = quota_for(current_plan(), "events_per_day")
    if limit is None:
        return
    start = dt.datetime.combine(timezone.now().date(), dt.time.min, tzinfo=dt.UTC)
    today = TenantEvent.objects.using(_alias()).filter(occurred_at__gte=start).count()
    if today + adding > limit:
        raise ValidationError(quota_sentence("events_per_day", limit))
