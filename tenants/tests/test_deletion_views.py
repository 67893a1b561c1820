"""Delete and Restore on the tenant page and in the API: who may, the typed confirmation, bad input.
The deletion saga itself is exercised in test_deletion.py."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from tenants.models import Tenant, TenantDeletion

pytestmark = pytest.mark.django_db(databases="__all__")


def test_anonymous_visitors_are_sent_to_sign_in(client, tenant_world):
    tenant = tenant_world["schema"][1]
    for name in ("tenants:delete", "tenants:restore"):
        response = client.post(reverse(name, args=[tenant.pk]))
        assert response.status_code == 302 and "/login" in response["Location"]


@pytest.mark.parametrize("persona", ["viewer", "operator", "outsider"])
def test_only_admins_may_delete_or_restore(client_for, request, tenant_world, persona):
    tenant = tenant_world["schema"][1]
    client = client_for(request.getfixturevalue(persona))
    assert client.post(reverse("tenants:delete", args=[tenant.pk]), {"confirm": tenant.slug}).status_code == 403
    assert client.post(reverse("tenants:restore", args=[tenant.pk])).status_code == 403
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE


def test_an_admin_deletes_with_the_slug_typed_and_restores_within_the_grace_period(
    client_for, platform_admin, tenant_world
):
    tenant = tenant_world["dedicated"][1]
    client = client_for(platform_admin)
    assert client.get(reverse("tenants:restore", args=[tenant.pk])).status_code == 405
    wrong = client.post(reverse("tenants:delete", args=[tenant.pk]), {"confirm": "nope"}, follow=True)
    assert "Type the tenant" in wrong.content.decode()
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    client.post(reverse("tenants:delete", args=[tenant.pk]), {"confirm": tenant.slug, "reason": "churn"})
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.DELETING
    page = client.get(reverse("tenants:detail", args=[tenant.pk])).content.decode()
    assert "Restore" in page and "churn" in page
    assert AuditEntry.objects.filter(action="tenant.delete", target_id=str(tenant.pk)).exists()
    client.post(reverse("tenants:restore", args=[tenant.pk]))
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    assert TenantDeletion.objects.get(tenant=tenant).state == TenantDeletion.State.CANCELLED


def test_the_api_deletes_and_restores_for_admins_only(api_client_for, platform_admin, operator, tenant_world):
    tenant = tenant_world["shared"][1]
    url = f"/api/tenants/{tenant.pk}/delete"
    body = json.dumps({"confirm": tenant.slug})
    assert api_client_for(operator).post(url, body, content_type="application/json").status_code == 403
    bad = api_client_for(platform_admin).post(url, json.dumps({"confirm": "x"}), content_type="application/json")
    assert bad.status_code == 422 and "Type the tenant" in bad.json()["detail"]
    for nasty in ({"confirm": 5}, {}, {"confirm": "a" * 101}, {"confirm": tenant.slug, "reason": ["x"]}):
        response = api_client_for(platform_admin).post(url, json.dumps(nasty), content_type="application/json")
        assert response.status_code in (400, 422)
    response = api_client_for(platform_admin).post(url, body, content_type="application/json")
    assert response.status_code == 202 and response.json()["state"] == "scheduled"
    again = api_client_for(platform_admin).post(url, body, content_type="application/json")
    assert again.status_code == 409
    restored = api_client_for(platform_admin).post(f"/api/tenants/{tenant.pk}/restore")
    assert restored.status_code == 200 and restored.json()["status"] == "active"


def test_the_command_refuses_unknown_tenants(tenant_world):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="There is no tenant"):
        call_command("delete_tenant", "no-such-tenant", "--no-wait")


def test_the_command_says_one_sentence_when_a_worker_still_holds_the_final_export(tenant_world, monkeypatch):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from tenants.offboarding import services

    def held_by_a_worker(*, group, timeout):  # the export job is a worker's; nothing settles in time
        raise TimeoutError(f"Jobs of {group[0]} {group[1]} did not settle within {timeout:g} s.")

    monkeypatch.setattr(services, "jobs_work_inline", held_by_a_worker)
    tenant = tenant_world["shared"][1]
    with pytest.raises(CommandError, match=r"^The final export has not finished within 10 minutes"):
        call_command("delete_tenant", tenant.slug, "--grace", "0")
    assert TenantDeletion.objects.filter(tenant=tenant).exists()  # scheduled: it goes on with the worker
