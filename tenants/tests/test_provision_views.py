"""Provisioning from the dashboard and the API: who may, what a submission starts, double submits,
bad input. The saga path itself (steps, compensations, a real worker) is in test_provisioning*.py."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from sagas.models import Saga
from tenants.models import Tenant
from tests.support.personas import mfa_verify_client

pytestmark = pytest.mark.django_db

URL = reverse("tenants:provision")


def _form(**overrides) -> dict:
    return {"slug": "form-made", "name": "", "isolation": "schema", "plan": "business", "owner_email": "",
            "request_key": str(uuid.uuid4()), **overrides}  # fmt: skip


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login" in response["Location"]


@pytest.mark.parametrize("persona", ["viewer", "outsider"])
def test_viewers_and_outsiders_may_not_provision(client_for, request, persona):
    client = client_for(request.getfixturevalue(persona))
    assert client.get(URL).status_code == 403
    assert client.post(URL, _form()).status_code == 403
    assert not Saga.objects.filter(tenant_label="form-made").exists()


def test_an_operator_gets_the_form_with_a_fresh_request_key_each_time(client_for, operator):
    client = client_for(operator)
    first, second = client.get(URL), client.get(URL)
    assert first.status_code == 200 and b'name="request_key"' in first.content
    key = first.context["form"]["request_key"].value()
    assert key != second.context["form"]["request_key"].value()


def test_submitting_starts_one_saga_and_shows_it_and_a_double_submit_lands_on_the_same_saga(client_for, operator):
    client = client_for(operator)
    form = _form()
    first = client.post(URL, form)
    saga = Saga.objects.get(tenant_label="form-made")
    assert first.status_code == 302 and first["Location"] == reverse("sagas:detail", args=[saga.id])
    assert (saga.saga_type, saga.tenant_label, saga.requested_by_label) == (
        "provision.schema",
        "form-made",
        operator.username,
    )
    again = client.post(URL, form)  # the same form, submitted twice
    assert again.status_code == 302 and again["Location"] == first["Location"]
    assert Saga.objects.filter(tenant_label="form-made").count() == 1
    assert AuditEntry.objects.filter(action="tenant.provision", actor=operator).count() == 1


def test_bad_input_gets_one_sentence_and_starts_nothing(client_for, operator):
    client = client_for(operator)
    response = client.post(URL, _form(slug="Bad Slug!"))
    assert response.status_code == 400
    assert "lowercase letters" in response.content.decode()
    response = client.post(URL, _form(slug="fine-slug", owner_email="not-an-email"))
    assert response.status_code == 400 and "valid email" in response.content.decode()
    assert not Saga.objects.filter(tenant_label__in=["Bad Slug!", "fine-slug"]).exists()
    assert not Tenant.objects.filter(slug="fine-slug").exists()


def test_a_taken_slug_is_refused_in_one_sentence(client_for, operator):
    from tests.factories import TenantFactory

    TenantFactory(slug="taken-co")
    response = client_for(operator).post(URL, _form(slug="taken-co"))
    assert response.status_code == 400 and "already taken" in response.content.decode()
    assert not Saga.objects.filter(tenant_label="taken-co").exists()


# --- the API: POST /api/tenants/ ------------------------------------------------------------------


def test_the_api_refuses_anonymous_callers_and_viewers(client, api_client_for, viewer):
    body = {"slug": "new-one", "isolation": "shared"}
    assert client.post("/api/tenants/", body, content_type="application/json").status_code == 401
    response = api_client_for(viewer).post("/api/tenants/", body, content_type="application/json")
    assert response.status_code == 403 and response.json() == {"detail": "This needs the Operator role."}
    assert not Saga.objects.filter(tenant_label="new-one").exists()


def test_an_operator_starts_provisioning_and_a_retried_call_returns_the_same_saga(client, operator):
    client.force_login(operator)
    mfa_verify_client(client, operator)
    body = {"slug": "api-made", "isolation": "schema", "plan": "business", "idempotency_key": "k-1"}
    first = client.post("/api/tenants/", body, content_type="application/json")
    again = client.post("/api/tenants/", body, content_type="application/json")
    assert first.status_code == 202 and again.status_code == 202
    assert first.json()["saga_id"] == again.json()["saga_id"]
    assert first.json()["saga_type"] == "provision.schema"
    assert first.json()["monitor"] == f"/sagas/{first.json()['saga_id']}/"
    assert Saga.objects.filter(tenant_label="api-made").count() == 1
    assert AuditEntry.objects.filter(action="tenant.provision", actor=operator).count() == 1


def test_provisioning_bad_input_is_a_422_with_one_sentence(client, operator):
    client.force_login(operator)
    mfa_verify_client(client, operator)
    response = client.post(
        "/api/tenants/", {"slug": "Bad Slug!", "isolation": "shared"}, content_type="application/json"
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("The slug may only contain lowercase letters")
    response = client.post("/api/tenants/", {"slug": "fine-slug", "isolation": "moon"}, content_type="application/json")
    assert response.status_code == 400  # the schema declares the enum
    assert response.json() == {"detail": "isolation: Input should be 'shared', 'schema' or 'dedicated'."}
    assert not Saga.objects.filter(tenant_label__in=["Bad Slug!", "fine-slug"]).exists()
