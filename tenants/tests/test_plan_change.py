"""Plan changes: the plan → level mapping, the confirmation a move needs, who may."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from core.actors import SystemActor
from core.errors import InvalidInput
from tenants.models import TenantMove
from tenants.moves.plans import tenant_change_plan

pytestmark = pytest.mark.django_db(databases="__all__")
ACTOR = SystemActor("tests")


def test_a_plan_on_the_same_level_changes_without_a_move(tenant_world):
    tenant = tenant_world["shared"][0]  # free → team: both shared
    assert tenant_change_plan(tenant=tenant, plan="team", actor=ACTOR) is None
    tenant.refresh_from_db()
    assert tenant.plan == "team" and tenant.isolation == "shared"
    assert not TenantMove.objects.filter(tenant=tenant).exists()
    assert AuditEntry.objects.filter(action="tenant.plan_change", target_id=str(tenant.pk)).exists()


def test_a_plan_on_another_level_needs_the_move_confirmed_and_then_starts_it(tenant_world):
    tenant = tenant_world["shared"][1]
    with pytest.raises(InvalidInput, match="confirm moving .* from shared to dedicated"):
        tenant_change_plan(tenant=tenant, plan="enterprise", actor=ACTOR)
    tenant.refresh_from_db()
    assert tenant.plan == "free"
    move = tenant_change_plan(tenant=tenant, plan="enterprise", confirm_move=True, actor=ACTOR)
    assert move is not None and move.target_isolation == "dedicated" and move.state == "running"
    tenant.refresh_from_db()
    assert tenant.plan == "enterprise"


@pytest.mark.parametrize("plan", ["", "platinum", "free\x00", "x" * 500])
def test_unknown_or_unchanged_plans_are_refused(tenant_world, plan):
    tenant = tenant_world["schema"][0]
    with pytest.raises(InvalidInput):
        tenant_change_plan(tenant=tenant, plan=plan or tenant.plan, actor=ACTOR)


@pytest.mark.parametrize("persona", ["viewer", "operator", "outsider"])
def test_only_admins_change_plans(client_for, request, tenant_world, persona):
    tenant = tenant_world["dedicated"][0]
    before = tenant.plan
    response = client_for(request.getfixturevalue(persona)).post(
        reverse("tenants:plan", args=[tenant.pk]), {"plan": "team" if before != "team" else "free"}
    )
    assert response.status_code == 403
    tenant.refresh_from_db()
    assert tenant.plan == before


def test_the_admin_screen_asks_for_confirmation_then_moves(client_for, platform_admin, tenant_world):
    tenant = tenant_world["dedicated"][1]
    client = client_for(platform_admin)
    page = client.post(reverse("tenants:plan", args=[tenant.pk]), {"plan": "business"}, follow=True).content.decode()
    assert "confirm moving" in page
    client.post(reverse("tenants:plan", args=[tenant.pk]), {"plan": "business", "confirm_move": "1"})
    assert TenantMove.objects.get(tenant=tenant).target_isolation == "schema"


def test_the_api_changes_plans_for_admins_with_the_move_confirmed(
    api_client_for, platform_admin, operator, tenant_world
):
    import json

    tenant = tenant_world["schema"][1]
    url = f"/api/tenants/{tenant.pk}/plan"
    assert (
        api_client_for(operator).post(url, json.dumps({"plan": "team"}), content_type="application/json").status_code
        == 403
    )
    refused = api_client_for(platform_admin).post(url, json.dumps({"plan": "team"}), content_type="application/json")
    assert refused.status_code == 422 and "confirm moving" in refused.json()["detail"]
    assert api_client_for(platform_admin).post(
        url, json.dumps({"plan": 3}), content_type="application/json"
    ).status_code in (400, 422)
    done = api_client_for(platform_admin).post(
        url, json.dumps({"plan": "team", "confirm_move": True}), content_type="application/json"
    )
    assert done.status_code == 200 and done.json()["move"]["target_isolation"] == "shared"
