"""What the collector does after reading: quota warnings (80 % / 100 %) and daily usage records.

- `quota_warnings_raise` compares each tenant's latest figures with its plan's quotas and writes a
  `QuotaWarning` the first time a level is reached in a period (members and storage: per month;
  events: per day), with a control-plane event `QuotaWarningRaised` (webhooks forward it) and an
  email job to the tenant's owner — all in one transaction, so a warning is never half-raised.
- `usage_records_write` turns each closed day's rollup into an immutable `UsageRecord`
  (`INSERT … ON CONFLICT DO NOTHING`: re-running a day changes nothing) with a control-plane event
  `UsageRecorded` per record written, which the webhooks app pushes to billing endpoints.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core.quotas import WARNING_LEVELS, plan_quotas
from events.services import control_event_append
from jobs.services import job_create
from tenants.models import Tenant
from usage.models import QuotaWarning, UsageDaily, UsageRecord, UsageState

RECORD_FIELDS = ("members", "storage_bytes", "storage_estimated", "events", "requests", "p95_ms")


def quota_warnings_raise(*, now: dt.datetime | None = None, tenant_ids: list[Any] | None = None) -> list[QuotaWarning]:
    now = now or timezone.now()
    states = UsageState.objects.select_related("tenant").filter(collected_at__isnull=False)
    if tenant_ids is not None:
        states = states.filter(tenant_id__in=tenant_ids)
    today = dict(
        UsageDaily.objects.filter(day=now.date(), tenant_id__in=[s.tenant_id for s in states]).values_list(
            "tenant_id", "events_appended"
        )
    )
    raised = []
    for state in states:
        quotas = plan_quotas(state.tenant.plan)
        figures = {
            "members": (state.members, now.strftime("%Y-%m")),
            "storage_bytes": (state.storage_bytes, now.strftime("%Y-%m")),
            "events_per_day": (int(today.get(state.tenant_id) or 0), now.date().isoformat()),
        }
        for name, (value, period) in figures.items():
            limit = quotas.get(name)
            if not limit:
                continue
            for level in WARNING_LEVELS:
                if value * 100 >= limit * level:
                    warning = _raise(state.tenant, name, level, period, value, limit)
                    if warning is not None:
                        raised.append(warning)
    return raised


def _raise(tenant: Tenant, quota: str, level: int, period: str, value: int, limit: int) -> QuotaWarning | None:
    with transaction.atomic():
        warning, created = QuotaWarning.objects.get_or_create(
            tenant=tenant, quota=quota, level=level, period=period, defaults={"value": value, "limit": limit}
        )
        if not created:
            return None
        control_event_append(
            aggregate_type="tenant_usage",
            aggregate_id=str(tenant.pk),
            event_type="QuotaWarningRaised",
            data={"quota": quota, "level": level, "period": period, "value": value, "limit": limit},
            tenant_id=tenant.pk,
        )
        if tenant.owner_email:
            job_create(kind="usage.quota_email", payload={"warning_id": warning.pk})
    return warning


def _digest(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def record_payload(record: UsageRecord) -> dict[str, Any]:
    return {
        "tenant_id": str(record.tenant_uuid),
        "tenant_slug": record.tenant_slug,
        "plan": record.plan,
        "day": record.day.isoformat(),
        **{name: getattr(record, name) for name in RECORD_FIELDS},
        "sha256": record.sha256,
    }


def usage_records_write(*, now: dt.datetime | None = None, lookback_days: int = 7) -> int:
    """Write the records of every closed day (before today) that has a rollup and no record yet."""
    now = now or timezone.now()
    today = now.date()
    pending = (
        UsageDaily.objects.filter(day__lt=today, day__gte=today - dt.timedelta(days=lookback_days))
        .select_related("tenant")
        .order_by("day", "tenant_id")
    )
    done = set(
        UsageRecord.objects.filter(day__lt=today, day__gte=today - dt.timedelta(days=lookback_days)).values_list(
            "tenant_uuid", "day"
        )
    )
    written = 0
    for daily in pending.iterator(chunk_size=500):
        if (daily.tenant_id, daily.day) in done:
            continue
        body: dict[str, Any] = {
            "tenant_id": str(daily.tenant_id),
            "tenant_slug": daily.tenant.slug,
            "plan": daily.tenant.plan,
            "day": daily.day.isoformat(),
            "members": daily.members,
            "storage_bytes": daily.storage_bytes,
            "storage_estimated": daily.storage_estimated,
            "events": daily.events_appended,
            "requests": daily.requests,
            "p95_ms": daily.p95_ms,
        }
        digest = _digest(body)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO usage_usagerecord (tenant_uuid, tenant_slug, plan, day, members, storage_bytes, "
                "storage_estimated, events, requests, p95_ms, sha256, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now()) "
                "ON CONFLICT (tenant_uuid, day) DO NOTHING RETURNING id",
                [daily.tenant_id, body["tenant_slug"], body["plan"], daily.day, daily.members, daily.storage_bytes,
                 daily.storage_estimated, daily.events_appended, daily.requests, daily.p95_ms, digest],
            )  # fmt: skip
            if cursor.fetchone() is None:
                continue  # another run wrote it first: the record stands as it was
            control_event_append(
                aggregate_type="usage_record",
                aggregate_id=f"{daily.tenant_id}:{daily.day.isoformat()}",
                event_type="UsageRecorded",
                data={**body, "sha256": digest},
                tenant_id=daily.tenant_id,
            )
            written += 1
    return written


def record_verify(record: UsageRecord) -> bool:
    """The record still matches the digest it was written with."""
    body = record_payload(record)
    digest = body.pop("sha256")
    return _digest(body) == digest
