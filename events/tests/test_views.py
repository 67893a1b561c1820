"""Operator event log viewer and JSON API: wiring, filters, keyset pages, state at T, diff, permissions."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.urls import reverse

from events.services import control_event_append
from events.store import EventStore
from tests.support.personas import mfa_verify_client

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def history():
    """A tenant aggregate with three events a day apart, the second caused by the first, all correlated."""
    store = EventStore.control()
    agg, corr = str(uuid.uuid4()), uuid.uuid4()
    created = store.append("tenant", agg, "tenant.created", {"status": "pending", "plan": "team"},
                           occurred_at=T0, correlation_id=corr, expected_version=0)  # fmt: skip
    active = store.append("tenant", agg, "tenant.activated", {"status": "active"}, occurred_at=T0 + dt.timedelta(days=1),
                          causation_id=created, correlation_id=corr, expected_version=1, metadata={"actor": "ada"})  # fmt: skip
    store.append("tenant", agg, "tenant.plan_changed", {"plan": "business"}, occurred_at=T0 + dt.timedelta(days=2),
                  expected_version=2)  # fmt: skip
    return {"agg": agg, "corr": corr, "created": created, "active": active}


VIEWS = [
    ("events:list", []),
    ("events:verify", []),
    ("events:projections", []),
    ("events:tail", []),
    ("events:detail", [1]),
    ("events:aggregate", ["tenant", "x"]),
]


@pytest.mark.parametrize(("name", "args"), VIEWS)
def test_anonymous_users_are_sent_to_sign_in_and_non_operators_get_403(client_for, outsider, name, args):
    assert client_for(None).get(reverse(name, args=args)).status_code == 302
    assert client_for(outsider).get(reverse(name, args=args)).status_code == 403


def test_a_viewer_filters_the_log_and_pages_with_a_keyset_cursor(client_for, viewer, history):
    for n in range(55):
        control_event_append(aggregate_type="bulk", aggregate_id=f"b{n}", event_type="bulk.made", data={"n": n})
    client = client_for(viewer)
    first = client.get(reverse("events:list"), {"aggregate_type": "bulk"})
    assert first.status_code == 200
    page = first.context["page"]
    assert len(page.events) == 50 and page.next_before == page.events[-1].event_id
    second = client.get(reverse("events:list"), {"aggregate_type": "bulk", "before": page.next_before})
    assert [e.aggregate_id for e in second.context["page"].events] == [f"b{n}" for n in range(4, -1, -1)]
    by_corr = client.get(reverse("events:list"), {"correlation": str(history["corr"])})
    assert {e.event_type for e in by_corr.context["page"].events} == {"tenant.created", "tenant.activated"}
    by_meta = client.get(reverse("events:list"), {"meta": "actor=ada"})
    assert [e.event_type for e in by_meta.context["page"].events] == ["tenant.activated"]
    by_time = client.get(
        reverse("events:list"),
        {"aggregate_id": history["agg"], "since": "2026-03-02T00:00:00", "until": "2026-03-02T23:59:59"},
    )
    assert [e.event_type for e in by_time.context["page"].events] == ["tenant.activated"]


def test_a_bad_filter_is_one_sentence_not_an_error_page(client_for, viewer):
    response = client_for(viewer).get(reverse("events:list"), {"correlation": "not-a-uuid"})
    assert response.status_code == 200
    assert "Correlation id must be a UUID." in response.content.decode()


def test_the_event_page_links_the_causation_chain(client_for, viewer, history):
    response = client_for(viewer).get(reverse("events:detail", args=[history["active"].event_id]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "caused this (ancestor)" in body and f">{history['created'].event_id}<" in body
    assert history["active"].hash_hex in body


def test_the_aggregate_page_shows_state_at_t_and_a_diff_linked_to_the_changing_events(client_for, viewer, history):
    url = reverse("events:aggregate", args=["tenant", history["agg"]])
    client = client_for(viewer)
    at_v1 = client.get(url, {"v": 1})
    assert at_v1.context["state"].state == {"status": "pending", "plan": "team"}
    at_time = client.get(url, {"at": "2026-03-02T13:00:00"})
    assert at_time.context["state"].state == {"status": "active", "plan": "team"}
    diff = client.get(url, {"from": "2026-03-01T12:00:00", "to": "2026-03-03T12:00:00"}).context["diff"]
    changes = {c.path: (c.before, c.after, c.event.event_type) for c in diff["changes"]}
    assert changes == {
        "status": ("pending", "active", "tenant.activated"),
        "plan": ("team", "business", "tenant.plan_changed"),
    }
    assert client.get(url).context["report"].ok


def test_the_live_tail_returns_only_events_committed_after_the_cursor(client_for, viewer):
    response = client_for(viewer).get(reverse("events:tail"), {"after": "0:0"})
    assert response.status_code == 200 and 'id="tail-poller"' in response.content.decode()


def test_viewers_cannot_rebuild_projections_but_operators_can(
    client_for, viewer, operator, django_capture_on_commit_callbacks
):
    url = reverse("events:projection_rebuild")
    assert client_for(viewer).post(url, {"projection": "control.event_type_stats"}).status_code == 403
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(operator).post(url, {"projection": "control.event_type_stats"})
    assert response.status_code == 302 and len(callbacks) == 1


def test_the_api_needs_credentials_and_serves_pages_and_state_at_t(client, api_client_for, viewer, history):
    assert client.get("/api/events/").status_code == 401
    api = api_client_for(viewer)
    page = api.get("/api/events/", {"aggregate_id": history["agg"], "limit": 2}).json()
    assert [e["version"] for e in page["events"]] == [3, 2] and page["next_before"]
    state = api.get(f"/api/events/state/tenant/{history['agg']}", {"at": "2026-03-02T13:00:00Z"}).json()
    assert state["state"] == {"status": "active", "plan": "team"} and state["version"] == 2
    assert api.get(f"/api/events/state/tenant/{uuid.uuid4()}").status_code == 404
    assert api.get("/api/events/", {"since": "soon"}).status_code == 400
    assert api.get("/api/events/verify", {"aggregate_id": history["agg"]}).json()["ok"] is True
    detail = api.get(f"/api/events/{history['active'].event_id}").json()
    assert detail["causation_id"] == str(history["created"].event_uuid)


def test_the_api_refuses_operators_tokens_of_non_staff(client, outsider):
    client.force_login(outsider)
    mfa_verify_client(client, outsider)
    assert client.get("/api/events/").status_code in (401, 403)
