"""Webhooks end to end against a real HTTP receiver (http.server in a thread): lifecycle event → control-plane
log → dispatching consumer → delivery job → signed POST, with retries, permanent failures, replay, filters
and secret rotation. Transactional: the consumer reads the log's committed feed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from core.actors import SystemActor
from events import projections
from jobs.services import jobs_work_inline
from tenants import services as tenant_services
from tests.factories import TenantFactory
from webhooks import dispatch, services, signing
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)
ACTOR = SystemActor("webhook tests")


class Receiver:
    """Answers with the queued status codes (then 200) and keeps every request it got."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture(autouse=True)
def quick_backoff(settings):
    settings.WEBHOOK_BACKOFF_SECONDS = 0.05
    settings.WEBHOOK_TIMEOUT_SECONDS = 5


def dispatched(expected: int, timeout: float = 60.0) -> list[WebhookDelivery]:
    """Run the consumer until `expected` deliveries exist (the feed hands out committed events only once
    no older transaction on the server is still open, so a busy server can make this wait)."""
    deadline = time.monotonic() + timeout
    while True:
        projections.catch_up(dispatch.NAME)
        found = list(WebhookDelivery.objects.order_by("id"))
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def deliver(delivery: WebhookDelivery) -> WebhookDelivery:
    jobs_work_inline(group=("webhook_delivery", delivery.pk), timeout=60)
    delivery.refresh_from_db()
    return delivery


def test_a_suspension_is_delivered_signed_after_two_failures(receiver):
    endpoint, secret = services.endpoint_create(url=receiver.url, events=["tenant.suspended"], actor=ACTOR)
    tenant = TenantFactory(slug="acme")
    receiver.codes = [500, 503]

    tenant_services.tenant_suspend(tenant=tenant, actor=ACTOR, reason="unpaid invoice")
    [delivery] = dispatched(1)
    delivery = deliver(delivery)

    assert delivery.state == "succeeded" and delivery.attempts == 3
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 503, 200]
    assert len(receiver.received) == 3
    for got in receiver.received:
        assert signing.verify(got["body"], got["headers"][signing.HEADER], secret)
        assert got["headers"]["Webhook-Id"] == str(delivery.event_id)
    payload = json.loads(receiver.received[-1]["body"])
    assert payload["type"] == "tenant.suspended"
    assert payload["data"]["tenant_id"] == str(tenant.pk)
    assert payload["data"]["tenant_slug"] == "acme" and payload["data"]["reason"] == "unpaid invoice"
    assert not signing.verify(got["body"] + b" ", got["headers"][signing.HEADER], secret)  # tampered
    assert not signing.verify(got["body"], got["headers"][signing.HEADER], "whsec_wrong")
    assert endpoint.deliveries.count() == 1


def test_a_refusing_receiver_fails_at_once_and_replay_sends_the_same_event(receiver):
    endpoint, secret = services.endpoint_create(url=receiver.url, events=[], actor=ACTOR)
    tenant = TenantFactory()
    receiver.codes = [400]
    tenant_services.tenant_suspend(tenant=tenant, actor=ACTOR)
    [delivery] = dispatched(1)
    delivery = deliver(delivery)
    assert delivery.state == "failed" and delivery.attempts == 1 and delivery.last_status_code == 400

    replay = deliver(services.delivery_replay(delivery=delivery, actor=ACTOR))

    assert replay.state == "succeeded" and replay.replay_of_id == delivery.pk
    assert [r["headers"]["Webhook-Id"] for r in receiver.received] == [str(delivery.event_id)] * 2


def test_filters_and_creation_time_decide_who_gets_an_event(receiver):
    early = TenantFactory()
    tenant_services.tenant_suspend(tenant=early, actor=ACTOR)  # before any endpoint exists
    projections.catch_up(dispatch.NAME)
    resumed_only, _ = services.endpoint_create(url=receiver.url, events=["tenant.resumed"], actor=ACTOR)
    everything, _ = services.endpoint_create(url=receiver.url, events=[], actor=ACTOR)
    tenant = TenantFactory()
    tenant_services.tenant_suspend(tenant=tenant, actor=ACTOR)
    tenant_services.tenant_resume(tenant=tenant, actor=ACTOR)

    found = dispatched(3)

    assert sorted((d.endpoint_id, d.event_type) for d in found) == sorted(
        [(resumed_only.pk, "tenant.resumed"), (everything.pk, "tenant.suspended"), (everything.pk, "tenant.resumed")]
    )
    projections.catch_up(dispatch.NAME)  # again: nothing twice
    assert WebhookDelivery.objects.count() == 3


def test_a_rotated_secret_and_the_previous_one_both_verify_until_the_overlap_ends(receiver):
    endpoint, old = services.endpoint_create(url=receiver.url, events=[], actor=ACTOR)
    new = services.secret_rotate(endpoint=endpoint, actor=ACTOR)
    body = b'{"x":1}'
    header = signing.header_value(body, services.signing_secrets(endpoint))
    assert header.count("v1=") == 2
    assert signing.verify(body, header, old) and signing.verify(body, header, new)

    endpoint.previous_secret_expires_at = timezone.now() - timedelta(seconds=1)
    endpoint.save(update_fields=["previous_secret_expires_at"])
    header = signing.header_value(body, services.signing_secrets(endpoint))
    assert signing.verify(body, header, new) and not signing.verify(body, header, old)
    stale = signing.header_value(body, [new], timestamp=int(time.time()) - 3600)
    assert not signing.verify(body, stale, new)  # too old: a replayed capture is refused
