"""Daily usage records (immutable, idempotent) and /metrics (protected, bounded labels)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from events.models import Event
from tests.factories import SagaFactory, TenantFactory
from usage import services
from usage.models import UsageDaily, UsageRecord, UsageState

pytestmark = pytest.mark.django_db


def daily(tenant, day, **figures):
    defaults = {
        "members": 3, "rows": {}, "total_rows": 10, "storage_bytes": 4096, "storage_estimated": False,
        "events_total": 5, "events_appended": 5, "requests": 42, "latency_buckets": [], "p95_ms": 12.5,
        "collected_at": timezone.now(),
    }  # fmt: skip
    return UsageDaily.objects.create(tenant=tenant, day=day, **{**defaults, **figures})


def test_closed_days_get_one_record_and_rerunning_changes_nothing():
    tenant = TenantFactory(slug="metered", plan="team")
    today = timezone.now().date()
    daily(tenant, today - dt.timedelta(days=1), requests=42)
    daily(tenant, today, requests=7)  # still open: no record yet

    assert services.usage_records_write() == 1
    UsageDaily.objects.filter(tenant=tenant).update(requests=999)  # a late recount changes the rollup …
    assert services.usage_records_write() == 0

    [record] = UsageRecord.objects.all()
    assert record.day == today - dt.timedelta(days=1) and record.requests == 42  # … never the record
    assert record.tenant_slug == "metered" and record.plan == "team"
    assert services.record_verify(record)
    assert Event.objects.filter(event_type="UsageRecorded", aggregate_type="usage_record").count() == 1


def test_the_app_role_cannot_change_or_delete_a_record():
    tenant = TenantFactory()
    daily(tenant, timezone.now().date() - dt.timedelta(days=2))
    services.usage_records_write()
    for statement in ("UPDATE usage_usagerecord SET requests = 0", "DELETE FROM usage_usagerecord"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert UsageRecord.objects.get().requests == 42


def test_metrics_is_off_until_a_token_or_network_is_set(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics").status_code == 404


def test_metrics_needs_the_token_or_an_allowed_address(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="11.1.2.3").status_code == 403


def test_metrics_labels_stay_bounded(client, settings):
    settings.METRICS_TOKEN = "t"
    for i in range(15):
        tenant = TenantFactory(slug=f"m-{i:02d}", plan="free" if i % 2 else "team")
        UsageState.objects.create(tenant=tenant, storage_bytes=1000 + i, requests_24h=i, collected_at=timezone.now())
    saga = SagaFactory(saga_type="provision.schema", state="completed")
    saga.finished_at = saga.created_at + dt.timedelta(seconds=3)
    saga.save(update_fields=["finished_at"])

    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()

    storage_lines = [line for line in body.splitlines() if line.startswith("controlplane_top_tenant_storage_bytes{")]
    assert len(storage_lines) == 10 and 'tenant="m-14"' in storage_lines[0]
    assert 'controlplane_usage_storage_bytes{plan="free"}' in body
    assert 'controlplane_provisioning_seconds_bucket{isolation="schema",le="5.0"} 1.0' in body
    assert 'controlplane_sagas{saga_type="provision.schema",state="completed"}' in body
    assert "controlplane_jobs_open" in body


def test_the_grafana_dashboard_only_uses_metrics_that_exist(client, settings):
    import json
    import re
    from pathlib import Path

    settings.METRICS_TOKEN = "t"
    SagaFactory(saga_type="provision.shared", state="completed")
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json").read_text())
    used = {m for p in dashboard["panels"] for t in p["targets"] for m in re.findall(r"controlplane_\w+", t["expr"])}
    declared = set(re.findall(r"^# TYPE (controlplane_\w+)", body, flags=re.M))
    histogram_series = {f"{name}_bucket" for name in declared}
    assert used and used <= declared | histogram_series
