"""Tenant lifecycle in the control-plane event log: every status change is an event, so state at T works."""

from __future__ import annotations

import pytest
from django.utils import timezone

from events.models import Event
from events.services import control_store
from tenants.models import Tenant
from tenants.provisioning.steps import ProvisioningError
from tenants.services import tenant_resume, tenant_suspend
from tests.support.tenancy import provision

pytestmark = pytest.mark.django_db(databases="__all__")


def _events(tenant_id) -> list[str]:
    return list(
        Event.objects.filter(aggregate_type="tenant", aggregate_id=str(tenant_id))
        .order_by("version")
        .values_list("event_type", flat=True)
    )


def test_provisioning_suspending_and_resuming_are_events_and_state_at_t_follows_them(make_tenant, operator):
    tenant = make_tenant("shared", seed=False)
    assert _events(tenant.pk) == ["TenantRegistered", "TenantProvisioningStarted", "TenantActivated"]

    before_suspend = timezone.now()
    tenant_suspend(tenant=tenant, actor=operator, reason="unpaid invoice")
    suspended_at = timezone.now()
    tenant_resume(tenant=tenant, actor=operator)

    store = control_store()
    assert store.state_at("tenant", str(tenant.pk), before_suspend).state["status"] == "active"
    past = store.state_at("tenant", str(tenant.pk), suspended_at).state
    assert past["status"] == "suspended" and past["reason"] == "unpaid invoice"
    now = store.state_at("tenant", str(tenant.pk)).state
    assert now["status"] == "active" and now["slug"] == tenant.slug and now["isolation"] == "shared"


def test_a_rolled_back_provisioning_ends_with_a_removed_event(monkeypatch):
    from tenants.provisioning import steps as provisioning

    def explode(tenant_id):
        raise ProvisioningError("The pool is on fire.")

    patched = [
        s if s.name != "activate" else provisioning.Step(s.name, explode, s.compensate, s.title)
        for s in provisioning.PROVISIONING_STEPS["shared"]
    ]
    monkeypatch.setitem(provisioning.PROVISIONING_STEPS, "shared", patched)
    with pytest.raises(ProvisioningError, match="The pool is on fire."):
        provision("shared", "doomed-co")
    assert not Tenant.objects.filter(slug="doomed-co").exists()
    removed = Event.objects.get(aggregate_type="tenant", event_type="TenantRemoved", event_data__status="deleted")
    assert _events(removed.aggregate_id)[0] == "TenantRegistered"
