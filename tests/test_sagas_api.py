"""The saga API: roles on every endpoint, one-sentence errors, audited actions."""

from __future__ import annotations

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from events.sagas import services
from events.sagas.models import Saga, SagaState, SagaStep, StepState

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr(services.transaction, "on_commit", lambda fn, robust=False: None)


def _saga(state=SagaState.RUNNING) -> Saga:
    now = timezone.now()
    saga = Saga.objects.create(
        saga_type="provision.shared", state=state, tenant_label="acme", created_at=now, updated_at=now
    )
    SagaStep.objects.create(saga=saga, index=0, name="register_tenant", state=StepState.PENDING, attempts=1)
    return saga


def test_the_api_refuses_anonymous_callers_and_non_operators(client, outsider):
    saga = _saga()
    assert client.get("/api/sagas/").status_code == 401
    client.force_login(outsider)
    assert client.get(f"/api/sagas/{saga.id}").status_code == 401
    assert client.post(f"/api/sagas/{saga.id}/retry").status_code == 401


def test_a_viewer_reads_but_every_write_is_refused(client, viewer):
    saga = _saga()
    client.force_login(viewer)
    listed = client.get("/api/sagas/?state=running").json()
    assert [s["tenant_label"] for s in listed] == ["acme"]
    assert client.get("/api/sagas/counts").json()["running"] == 1
    assert client.get(f"/api/sagas/{saga.id}").json()["steps"][0]["name"] == "register_tenant"
    for action in ("retry", "cancel", "compensate"):
        response = client.post(f"/api/sagas/{saga.id}/{action}")
        assert response.status_code == 403
    response = client.post(
        "/api/sagas/provision", {"slug": "new-one", "isolation": "shared"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert not Saga.objects.filter(tenant_label="new-one").exists()


def test_compensate_needs_an_admin_and_is_audited(client, operator, platform_admin):
    saga = _saga()
    client.force_login(operator)
    assert client.post(f"/api/sagas/{saga.id}/compensate").json() == {"detail": "This needs the Admin role."}
    client.force_login(platform_admin)
    assert client.post(f"/api/sagas/{saga.id}/compensate").json()["state"] == "compensating"
    assert AuditEntry.objects.filter(action="saga.compensate", actor=platform_admin).exists()


def test_an_action_that_does_not_apply_is_a_409_with_one_sentence(client, operator):
    saga = _saga(state=SagaState.COMPENSATED)
    client.force_login(operator)
    response = client.post(f"/api/sagas/{saga.id}/cancel")
    assert response.status_code == 409
    assert response.json() == {"detail": "A compensated saga cannot be cancelled."}


def test_an_operator_starts_provisioning_and_a_retried_call_returns_the_same_saga(client, operator):
    client.force_login(operator)
    body = {"slug": "api-made", "isolation": "schema", "plan": "business", "idempotency_key": "k-1"}
    first = client.post("/api/sagas/provision", body, content_type="application/json")
    again = client.post("/api/sagas/provision", body, content_type="application/json")
    assert first.status_code == 202 and again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["saga_type"] == "provision.schema"
    assert Saga.objects.filter(tenant_label="api-made").count() == 1
    assert AuditEntry.objects.filter(action="tenant.provision", actor=operator).count() == 1


def test_provisioning_bad_input_is_a_422_with_one_sentence(client, operator):
    client.force_login(operator)
    response = client.post(
        "/api/sagas/provision", {"slug": "Bad Slug!", "isolation": "shared"}, content_type="application/json"
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("The slug may only contain lowercase letters")
    response = client.post(
        "/api/sagas/provision", {"slug": "fine-slug", "isolation": "moon"}, content_type="application/json"
    )
    assert response.json() == {"detail": "Isolation must be one of: shared, schema, dedicated."}
    assert not Saga.objects.exists()
