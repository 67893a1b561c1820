"""Webhook screens and API: Admins only, the secret shown once, hostile input refused in one sentence,
and the mapping from control-plane events to webhook types."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from core.actors import SystemActor
from core.permissions import Role
from tests.factories import SagaFactory, TenantFactory
from webhooks import dispatch, services
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint():
    return services.endpoint_create(url="https://hooks.example.com/x", events=[], actor=SystemActor("tests"))[0]


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(client_for, platform_admin):
    client = client_for(platform_admin)
    response = client.post(
        "/webhooks/", {"url": "https://billing.example.com/h", "events": ["tenant.suspended"]}, follow=True
    )
    page = response.content.decode()
    assert "whsec_" in page
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["tenant.suspended"] and "whsec_" not in endpoint.secret_encrypted
    assert "whsec_" not in client.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert AuditEntry.objects.filter(action="webhook.create").exists()


def test_bad_input_is_one_sentence(client_for, platform_admin):
    client = client_for(platform_admin)
    for data, sentence in [
        ({"url": "ftp://x"}, "must start with http"),
        ({"url": "https://x.test/" + "a" * 600}, "at most 500"),
        ({"url": "https://x.test/", "events": ["tenant.exploded"]}, "Unknown event type"),
    ]:
        response = client.post("/webhooks/", data)
        assert response.status_code == 400 and sentence in response.content.decode()
    assert client.post("/webhooks/", {"url": "https://x.test/\x00"}).status_code == 400
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/webhooks/"),
        ("post", "/webhooks/"),
        ("get", "/webhooks/{e}/"),
        ("post", "/webhooks/{e}/rotate/"),
        ("post", "/webhooks/{e}/delete/"),
        ("post", "/webhooks/deliveries/{d}/replay/"),
    ],
)
def test_it_requires_an_admin(client_for, make_operator, outsider, endpoint, method, path):
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_type="tenant.suspended", payload={}, state="failed"
    )
    url = path.format(e=endpoint.pk, d=delivery.pk)
    anonymous = getattr(client_for(None), method)(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    for user in (outsider, make_operator(Role.VIEWER), make_operator(Role.OPERATOR)):
        assert getattr(client_for(user), method)(url).status_code == 403
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert not WebhookDelivery.objects.filter(replay_of=delivery).exists()


def test_rotate_replay_and_delete_from_the_screen(client_for, platform_admin, endpoint):
    client = client_for(platform_admin)
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_type="tenant.suspended", payload={}, state="failed"
    )
    assert "whsec_" in client.post(f"/webhooks/{endpoint.pk}/rotate/", follow=True).content.decode()
    client.post(f"/webhooks/deliveries/{delivery.pk}/replay/")
    assert WebhookDelivery.objects.filter(replay_of=delivery).count() == 1
    client.post(f"/webhooks/{endpoint.pk}/delete/")
    assert not WebhookEndpoint.objects.exists()
    assert {"webhook.rotate", "webhook.replay", "webhook.delete"} <= set(
        AuditEntry.objects.values_list("action", flat=True)
    )
    assert client.get("/webhooks/999999999999999999999/").status_code == 404


def test_the_api_creates_lists_and_refuses(api_client_for, platform_admin, operator):
    api = api_client_for(platform_admin)
    created = api.post(
        "/api/webhooks/",
        {"url": "https://h.example.com/", "events": ["usage.recorded"]},
        content_type="application/json",
    )
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    assert [e["url"] for e in api.get("/api/webhooks/").json()] == ["https://h.example.com/"]
    bad = api.post("/api/webhooks/", {"url": 5, "events": "all"}, content_type="application/json")
    assert bad.status_code in (400, 422) and "detail" in bad.json()
    rotated = api.post(f"/api/webhooks/{created.json()['id']}/rotate")
    assert rotated.status_code == 200 and rotated.json()["previous_secret_expires_at"]
    assert api.get(f"/api/webhooks/{created.json()['id']}/deliveries").json() == []
    assert api_client_for(operator).get("/api/webhooks/").status_code == 403


def _event(event_type: str, aggregate_type: str, aggregate_id: str, **data):
    return SimpleNamespace(
        event_type=event_type, aggregate_type=aggregate_type, aggregate_id=aggregate_id, event_data=data,
        event_uuid=uuid.uuid4(), occurred_at=timezone.now(),
    )  # fmt: skip


def test_control_plane_events_map_to_webhook_types():
    tenant = TenantFactory(slug="mapped")
    assert dispatch.webhook_event(_event("TenantActivated", "tenant", str(tenant.pk), status="active"))[0] == (
        "tenant.provisioned"
    )
    kind, data = dispatch.webhook_event(_event("MigrationRunFinished", "migration_run", "7", status="succeeded"))
    assert kind == "migration_run.finished" and data["run_id"] == "7"
    signup = SagaFactory(idempotency_key="signup:abc", tenant_id=tenant.pk, tenant_label="mapped")
    assert dispatch.webhook_event(_event("SagaCompleted", "saga", str(signup.pk)))[0] == "signup.completed"
    operator_saga = SagaFactory(idempotency_key="operator:1:x")
    assert dispatch.webhook_event(_event("SagaCompleted", "saga", str(operator_saga.pk))) is None
    assert dispatch.webhook_event(_event("ControlFailing", "control", "CC6.1"))[0] == "compliance.control_failing"
    assert dispatch.webhook_event(_event("TenantProvisioningStarted", "tenant", str(tenant.pk))) is None
    assert set(dispatch.MAPPING.values()) | {"signup.completed"} == set(services.EVENT_TYPES)
