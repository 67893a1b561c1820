"""The Move button, the Moves card, the move API and the command: who may, what a request starts,
bad input. The saga itself is exercised in test_moves.py."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from audit.models import AuditEntry
from sagas.models import Saga
from tenants.models import Tenant, TenantMove

pytestmark = pytest.mark.django_db(databases="__all__")


def _tenant(world) -> Tenant:
    return world["schema"][0]


def test_anonymous_visitors_are_sent_to_sign_in(client, tenant_world):
    tenant = _tenant(tenant_world)
    for url in (reverse("tenants:moves", args=[tenant.pk]), reverse("tenants:move", args=[tenant.pk])):
        response = client.post(url) if url.endswith("/move/") else client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"]


@pytest.mark.parametrize("persona", ["viewer", "operator", "outsider"])
def test_only_admins_may_start_a_move(client_for, request, tenant_world, persona):
    tenant = _tenant(tenant_world)
    response = client_for(request.getfixturevalue(persona)).post(
        reverse("tenants:move", args=[tenant.pk]), {"to": "shared"}
    )
    assert response.status_code == 403
    assert not TenantMove.objects.filter(tenant=tenant).exists()


def test_outsiders_may_not_see_the_moves_card(client_for, outsider, tenant_world):
    assert client_for(outsider).get(reverse("tenants:moves", args=[_tenant(tenant_world).pk])).status_code == 403


def test_the_move_button_needs_post(client_for, platform_admin, tenant_world):
    response = client_for(platform_admin).get(reverse("tenants:move", args=[_tenant(tenant_world).pk]))
    assert response.status_code == 405


def test_an_admin_starts_a_move_that_the_card_then_shows_with_its_progress(client_for, platform_admin, tenant_world):
    tenant = _tenant(tenant_world)
    client = client_for(platform_admin)
    page = client.get(reverse("tenants:detail", args=[tenant.pk]))
    assert b"Never moved" in page.content and b'name="to"' in page.content
    response = client.post(reverse("tenants:move", args=[tenant.pk]), {"to": "dedicated"})
    assert response.status_code == 302 and response["Location"].endswith("#moves")
    move = TenantMove.objects.get(tenant=tenant)
    assert (move.state, move.target_isolation, move.source_isolation) == ("running", "dedicated", "schema")
    assert Saga.objects.get(pk=move.saga_id).saga_type == "tenant.move"
    assert AuditEntry.objects.filter(action="tenant.move", target_id=str(tenant.pk)).exists()
    card = client.get(reverse("tenants:moves", args=[tenant.pk]))
    assert card.status_code == 200
    assert b'hx-trigger="every 1s"' in card.content  # polls while it runs
    assert b"Running" in card.content and b"dedicated" in card.content
    second = client.post(reverse("tenants:move", args=[tenant.pk]), {"to": "shared"}, follow=True)
    assert "already being moved" in second.content.decode()
    assert TenantMove.objects.filter(tenant=tenant).count() == 1


@pytest.mark.parametrize("target", ["schema", "cloud", "", "x" * 5000, "sha\x00red"])
def test_a_move_to_nowhere_is_refused_with_one_sentence(client_for, platform_admin, tenant_world, target):
    tenant = _tenant(tenant_world)
    response = client_for(platform_admin).post(reverse("tenants:move", args=[tenant.pk]), {"to": target}, follow=True)
    assert response.status_code == 200
    text = response.content.decode()
    assert "already has its own schema" in text or "must be one of" in text
    assert not TenantMove.objects.filter(tenant=tenant).exists()


def test_the_api_lets_admins_move_and_everyone_with_a_role_follow(
    api_client_for, platform_admin, operator, viewer, tenant_world
):
    tenant = tenant_world["shared"][0]
    url = f"/api/tenants/{tenant.pk}/move"
    body = json.dumps({"to": "schema"})
    assert api_client_for(operator).post(url, body, content_type="application/json").status_code == 403
    assert api_client_for(viewer).post(url, body, content_type="application/json").status_code == 403
    response = api_client_for(platform_admin).post(url, body, content_type="application/json")
    assert response.status_code == 202, response.content
    assert response.json()["target_isolation"] == "schema" and response.json()["state"] == "running"
    listed = api_client_for(viewer).get(f"/api/tenants/{tenant.pk}/moves")
    assert listed.status_code == 200 and listed.json()[0]["id"] == response.json()["id"]
    again = api_client_for(platform_admin).post(url, body, content_type="application/json")
    assert again.status_code == 409 and again.json()["detail"] == f"{tenant.name} is already being moved."


@pytest.mark.parametrize(
    "body",
    [
        {"to": "nowhere"},
        {"to": 7},
        {},
        {"to": "dedicated", "server": "x" * 64},
        {"to": "dedicated", "server": "elsewhere"},
    ],
)
def test_the_api_answers_bad_input_with_a_sentence(api_client_for, platform_admin, tenant_world, body):
    tenant = tenant_world["shared"][1]
    response = api_client_for(platform_admin).post(
        f"/api/tenants/{tenant.pk}/move", json.dumps(body), content_type="application/json"
    )
    assert response.status_code in (400, 422)
    assert isinstance(response.json()["detail"], str | list)
    assert not TenantMove.objects.filter(tenant=tenant).exists()


def test_the_api_answers_404_for_an_unknown_tenant(api_client_for, platform_admin):
    response = api_client_for(platform_admin).get("/api/tenants/00000000-0000-0000-0000-000000000000/moves")
    assert response.status_code == 404


def test_the_command_refuses_unknown_tenants_and_levels_in_one_line(tenant_world):
    with pytest.raises(CommandError, match="There is no tenant"):
        call_command("move_tenant", "no-such-tenant", "--to", "shared")
    with pytest.raises(CommandError, match="already has its own schema"):
        call_command("move_tenant", _tenant(tenant_world).slug, "--to", "schema")


def test_the_command_starts_a_move_and_prints_its_id_last(tenant_world, capsys):
    tenant = tenant_world["dedicated"][0]
    call_command("move_tenant", tenant.slug, "--to", "shared", "--no-wait")
    out = capsys.readouterr().out.strip().splitlines()
    move = TenantMove.objects.get(tenant=tenant)
    assert out[-1] == str(move.pk)
