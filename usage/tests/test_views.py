"""Usage screens, exports and API: wiring, figures a user would see, and denied access for each."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from core.permissions import Role
from jobs.models import Job
from tests.factories import TenantFactory
from usage.models import UsageDaily, UsageRecord, UsageState

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_tenant():
    tenant = TenantFactory(slug="busy-co", plan="team")
    now = timezone.now()
    UsageState.objects.create(
        tenant=tenant, members=7, storage_bytes=5 * 2**20, storage_estimated=True, requests_24h=1234,
        total_rows=99, events_total=40, collected_at=now, last_activity_at=now,
    )  # fmt: skip
    for back in range(3):
        UsageDaily.objects.create(
            tenant=tenant, day=now.date() - dt.timedelta(days=back), members=7, rows={"workspace_member": 7},
            total_rows=99, storage_bytes=5 * 2**20, storage_estimated=True, events_total=40, events_appended=10 + back,
            requests=100 * (back + 1), latency_buckets=[0] * 12, p50_ms=8.0, p95_ms=40.0, collected_at=now,
        )  # fmt: skip
    return tenant


def test_the_usage_list_sorts_tenants_by_usage(client_for, viewer, busy_tenant):
    small = TenantFactory(slug="small-co")
    UsageState.objects.create(tenant=small, storage_bytes=10, requests_24h=99999, collected_at=timezone.now())
    client = client_for(viewer)
    by_storage = client.get("/usage/?sort=storage").content.decode()
    assert by_storage.index("busy-co") < by_storage.index("small-co")
    by_requests = client.get("/usage/?sort=requests").content.decode()
    assert by_requests.index("small-co") < by_requests.index("busy-co")
    assert client.get("/usage/?sort=%00nonsense&page=-5").status_code in (200, 400)


def test_the_usage_tab_shows_charts_quotas_and_the_estimate_label(client_for, viewer, busy_tenant):
    response = client_for(viewer).get(f"/usage/tenants/{busy_tenant.pk}/?days=90")
    page = response.content.decode()
    assert response.status_code == 200
    assert "estimate: share of the pool" in page
    assert "Requests per day" in page and "chart" in page
    assert "250" in page  # the team plan's member quota
    assert (
        client_for(viewer)
        .get(f"/tenants/{busy_tenant.pk}/")
        .content.decode()
        .count(f"/usage/tenants/{busy_tenant.pk}/")
    )


def test_the_overview_lists_top_tenants(client_for, viewer, busy_tenant):
    page = client_for(viewer).get("/").content.decode()
    assert "Top tenants" in page and "busy-co" in page


def test_the_csv_export_has_one_row_per_day_and_is_audited(client_for, operator, busy_tenant):
    response = client_for(operator).get(f"/usage/tenants/{busy_tenant.pk}/usage.csv?days=30")
    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert lines[0].startswith("day,members,total_rows,storage_bytes")
    assert len(lines) == 4
    assert AuditEntry.objects.filter(action="usage.export", target_id=str(busy_tenant.pk)).exists()


def test_an_operator_starts_one_collection_at_a_time(client_for, operator):
    client = client_for(operator)
    client.post("/usage/collect/")
    client.post("/usage/collect/")
    assert Job.objects.filter(kind="usage.collect").count() == 1
    assert AuditEntry.objects.filter(action="usage.collect").count() == 1


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("get", "/usage/", None),
        ("get", "/usage/records/", None),
        ("get", "/usage/tenants/{t}/", None),
        ("get", "/usage/tenants/{t}/usage.csv", Role.VIEWER),
        ("get", "/usage/records/export.csv", Role.VIEWER),
        ("get", "/usage/records/export.json", Role.VIEWER),
        ("post", "/usage/collect/", Role.VIEWER),
    ],
)
def test_it_requires_the_right_role(client_for, make_operator, outsider, busy_tenant, method, path, role):
    url = path.format(t=busy_tenant.pk)
    anonymous = getattr(client_for(None), method)(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert getattr(client_for(outsider), method)(url).status_code == 403
    if role is not None:
        assert getattr(client_for(make_operator(role)), method)(url).status_code == 403


def test_unknown_or_malformed_tenants_are_not_found(client_for, viewer):
    client = client_for(viewer)
    assert client.get("/usage/tenants/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get("/usage/records/export.xml").status_code in (403, 404)


def test_the_api_returns_usage_and_refuses_bad_input(api_client_for, viewer, busy_tenant):
    api = api_client_for(viewer)
    body = api.get(f"/api/usage/tenants/{busy_tenant.pk}?days=90").json()
    assert body["storage_estimated"] is True and body["members"] == 7
    assert [d["requests"] for d in body["days"]] == [300, 200, 100]
    assert {q["name"] for q in body["quotas"]} == {"members", "storage_bytes", "requests_per_minute", "events_per_day"}
    assert api.get(f"/api/usage/tenants/{busy_tenant.pk}?days=45").status_code == 422
    assert api.get(f"/api/usage/tenants/{busy_tenant.pk}?days=-1").status_code in (400, 422)
    assert api.get("/api/usage/top?by=requests&limit=3").json()[0]["slug"] == "busy-co"
    assert api.get("/api/usage/top?by=%00").status_code in (400, 422)
    assert api.get("/api/usage/top?limit=999999999999999999999").status_code in (400, 422)
    assert api.get("/api/usage/records?date_from=2026-13-45").status_code in (400, 422)


def test_the_api_needs_credentials(client, busy_tenant, api_client_for, outsider):
    assert client.get(f"/api/usage/tenants/{busy_tenant.pk}").status_code == 401
    assert client.get("/api/usage/records").status_code == 401


def test_records_export_as_csv_and_json(client_for, operator):
    UsageRecord.objects.create(
        tenant_uuid="11111111-1111-1111-1111-111111111111", tenant_slug="=cmd", plan="free",
        day=dt.date(2026, 1, 2), members=1, storage_bytes=2, storage_estimated=False, events=3, requests=4,
        p95_ms=None, sha256="ab" * 32,
    )  # fmt: skip
    client = client_for(operator)
    csv_body = b"".join(client.get("/usage/records/export.csv").streaming_content).decode()
    assert "'=cmd" in csv_body  # a spreadsheet formula is defused
    data = client.get("/usage/records/export.json?from=2026-01-01&to=2026-01-31").json()
    assert data[0]["day"] == "2026-01-02" and data[0]["requests"] == 4
    assert client.get("/usage/records/export.json?from=yesterday").status_code == 422


def test_quota_warnings_show_on_the_list_and_the_tab(client_for, viewer, busy_tenant):
    from usage.models import QuotaWarning

    QuotaWarning.objects.create(tenant=busy_tenant, quota="members", level=80, period="2026-12", value=200, limit=250)
    client = client_for(viewer)
    assert "reached 80 % of its members quota (200 of 250)" in client.get("/usage/").content.decode()
    assert "80 % of members (2026-12)" in client.get(f"/usage/tenants/{busy_tenant.pk}/").content.decode()
