"""Operator tenant screens and API: wiring, filters, and a denied-access test for each."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEntry
from tenants.models import Tenant

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def pair(tenant_world):
    """A shared and a dedicated tenant, each with 3 members and 2 accounts (changes roll back per test)."""
    return tenant_world["shared"][0], tenant_world["dedicated"][0]


def test_viewers_see_every_tenant_and_can_filter_by_isolation_status_and_search(client_for, viewer, pair):
    shared, dedicated = pair
    client = client_for(viewer)
    body = client.get("/tenants/").content.decode()
    assert shared.slug in body and dedicated.slug in body
    body = client.get("/tenants/", {"isolation": "dedicated"}).content.decode()
    assert dedicated.slug in body and shared.slug not in body
    body = client.get("/tenants/", {"q": shared.name.upper()}).content.decode()  # by name, any case
    assert shared.slug in body and dedicated.slug not in body
    body = client.get("/tenants/", {"q": f"{dedicated.slug}.localhost"}).content.decode()  # by domain
    assert dedicated.slug in body and shared.slug not in body
    body = client.get("/tenants/", {"status": "suspended"}).content.decode()
    assert "No tenant matches these filters" in body


def test_the_tenant_list_paginates(client_for, viewer):
    for i in range(30):
        Tenant.objects.create(slug=f"page-{i:02d}", name=f"Page {i:02d}", isolation="shared")
    client = client_for(viewer)
    first = client.get("/tenants/").content.decode()
    second = client.get("/tenants/", {"page": 2}).content.decode()
    assert "page-00" in first and "page-29" not in first
    assert "page-29" in second and "Page 2 of 2" in second


def test_the_list_answers_htmx_with_only_the_results(client_for, viewer, pair):
    response = client_for(viewer).get("/tenants/", {"q": pair[0].slug}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert 'id="tenant-results"' in body and "<html" not in body


def test_the_detail_page_shows_placement_domains_and_counts(client_for, viewer, pair):
    shared, dedicated = pair
    body = client_for(viewer).get(f"/tenants/{dedicated.pk}/").content.decode()
    assert dedicated.placement.db_name in body and f"{dedicated.slug}.localhost" in body
    assert "encrypted at rest" in body and "saas_app" not in body
    assert '<div class="stat-value">3</div>' in body  # members, read in the tenant's own database
    body = client_for(viewer).get(f"/tenants/{shared.pk}/").content.decode()
    assert shared.placement.schema_name in body


@pytest.mark.parametrize("path", ["/tenants/", "/tenants/00000000-0000-0000-0000-000000000000/"])
def test_anonymous_users_are_sent_to_sign_in_and_non_operators_are_refused(client_for, outsider, path):
    response = Client().get(path)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert client_for(outsider).get(path).status_code == 403


def test_operators_suspend_and_resume_with_an_audit_trail(client_for, operator, pair):
    shared, _ = pair
    client = client_for(operator)
    client.post(f"/tenants/{shared.pk}/suspend/", {"reason": "unpaid invoice"})
    shared.refresh_from_db()
    assert shared.status == "suspended" and shared.status_reason == "unpaid invoice"
    entry = AuditEntry.objects.get(action="tenant.suspend")
    assert entry.target_id == str(shared.pk) and entry.actor == operator
    assert Client(HTTP_HOST=f"{shared.slug}.localhost").get("/login/").status_code == 503
    client.post(f"/tenants/{shared.pk}/resume/")
    shared.refresh_from_db()
    assert shared.status == "active" and AuditEntry.objects.filter(action="tenant.resume").count() == 1
    assert Client(HTTP_HOST=f"{shared.slug}.localhost").get("/login/").status_code == 200


def test_viewers_cannot_suspend(client_for, viewer, pair):
    shared, _ = pair
    assert client_for(viewer).post(f"/tenants/{shared.pk}/suspend/").status_code == 403
    shared.refresh_from_db()
    assert shared.status == "active" and not AuditEntry.objects.filter(action="tenant.suspend").exists()


def test_suspend_needs_post(client_for, operator, pair):
    assert client_for(operator).get(f"/tenants/{pair[0].pk}/suspend/").status_code == 405


# --- API ------------------------------------------------------------------------------------


def test_the_api_lists_filters_and_details_tenants_for_viewers(api_client_for, viewer, pair):
    shared, dedicated = pair
    client = api_client_for(viewer)
    items = client.get("/api/tenants/").json()["items"]
    assert {t["slug"] for t in items} >= {shared.slug, dedicated.slug}
    items = client.get("/api/tenants/", {"isolation": "dedicated"}).json()["items"]
    assert dedicated.slug in {t["slug"] for t in items} and {t["isolation"] for t in items} == {"dedicated"}
    detail = client.get(f"/api/tenants/{dedicated.pk}").json()
    assert detail["placement"]["kind"] == "database" and detail["members"] == 3
    assert detail["domains"] == [{"domain": f"{dedicated.slug}.localhost", "is_primary": True, "verified": True}]
    assert "credentials" not in str(detail)
    assert client.get("/api/tenants/", {"status": "bogus"}).status_code == 422


def test_the_api_refuses_anonymous_callers_and_viewers_who_suspend(api_client_for, viewer, operator, pair):
    shared, _ = pair
    assert Client().get("/api/tenants/").status_code == 401
    assert api_client_for(viewer).post(f"/api/tenants/{shared.pk}/suspend", {}, "application/json").status_code == 403
    response = api_client_for(operator).post(f"/api/tenants/{shared.pk}/suspend", {"reason": "api"}, "application/json")
    assert response.status_code == 200 and response.json()["status"] == "suspended"
    again = api_client_for(operator).post(f"/api/tenants/{shared.pk}/suspend", {}, "application/json")
    assert again.status_code == 409
