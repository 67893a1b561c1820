"""The saga API: roles on every endpoint, one-sentence errors, audited actions."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from sagas.models import SagaState, StepState
from tests.factories import SagaFactory
from tests.support.personas import mfa_verify_client

pytestmark = pytest.mark.django_db


def _saga(state=SagaState.RUNNING):
    # Actions only queue work: the test's transaction never commits, so nothing is sent anywhere.
    return SagaFactory(state=state, steps=[("register_tenant", StepState.PENDING, 1)])


def test_the_api_refuses_anonymous_callers_and_non_operators(client, outsider):
    saga = _saga()
    assert client.get("/api/sagas/").status_code == 401
    client.force_login(outsider)
    mfa_verify_client(client, outsider)
    assert client.get(f"/api/sagas/{saga.id}").status_code == 401
    assert client.post(f"/api/sagas/{saga.id}/retry").status_code == 401


def test_a_viewer_reads_but_every_write_is_refused(client, viewer):
    saga = _saga()
    client.force_login(viewer)
    mfa_verify_client(client, viewer)
    listed = client.get("/api/sagas/?state=running").json()
    assert [s["tenant_label"] for s in listed] == ["acme"]
    assert client.get("/api/sagas/counts").json()["running"] == 1
    assert client.get(f"/api/sagas/{saga.id}").json()["steps"][0]["name"] == "register_tenant"
    for action in ("retry", "cancel", "compensate"):
        response = client.post(f"/api/sagas/{saga.id}/{action}")
        assert response.status_code == 403


def test_compensate_needs_an_admin_and_is_audited(client, operator, platform_admin):
    saga = _saga()
    client.force_login(operator)
    mfa_verify_client(client, operator)
    assert client.post(f"/api/sagas/{saga.id}/compensate").json() == {"detail": "This needs the Admin role."}
    client.force_login(platform_admin)
    mfa_verify_client(client, platform_admin)
    assert client.post(f"/api/sagas/{saga.id}/compensate").json()["state"] == "compensating"
    assert AuditEntry.objects.filter(action="saga.compensate", actor=platform_admin).exists()


def test_an_action_that_does_not_apply_is_a_409_with_one_sentence(client, operator):
    saga = _saga(state=SagaState.COMPENSATED)
    client.force_login(operator)
    mfa_verify_client(client, operator)
    response = client.post(f"/api/sagas/{saga.id}/cancel")
    assert response.status_code == 409
    assert response.json() == {"detail": "A compensated saga cannot be cancelled."}
