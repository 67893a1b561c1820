"""State at any time T: snapshots + replay equal a naive full replay; upcasters; the aggregate_state command."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import aggregates, upcasting
from events.models import Snapshot
from events.store import EventStore, NewEvent

COUNTER = "test.counter"


@aggregates.register(COUNTER, snapshot_every=3, reducer_version=1)
def _counter(state, event):
    data = event.event_data
    if event.event_type == "test.added":
        return {**state, "total": state.get("total", 0) + data["amount"], "count": state.get("count", 0) + 1}
    if event.event_type == "test.renamed":
        return {**state, "title": data["title"]}
    if event.event_type == "test.reset":
        return {"title": state.get("title"), "total": 0, "count": 0}
    return state


def _naive(events, until):
    state: dict = {}
    for e in events:
        if e["at"] <= until:
            state = _counter(state, type("E", (), {"event_type": e["type"], "event_data": e["data"]}))
    return state


T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
event_strategy: st.SearchStrategy = st.one_of(
    st.builds(lambda a: ("test.added", {"amount": a}), st.integers(-1000, 1000)),
    st.builds(
        lambda t: ("test.renamed", {"title": t}),
        st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=8),
    ),
    st.just(("test.reset", {})),
)


@pytest.mark.django_db
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    ops=st.lists(st.tuples(event_strategy, st.integers(0, 3)), min_size=1, max_size=25),
    probes=st.lists(st.integers(-1, 80), min_size=1, max_size=6),
)
def test_state_at_any_time_matches_a_naive_full_replay(ops, probes):
    store = EventStore.control()
    agg = str(uuid.uuid4())
    generated, at = [], T0
    for (event_type, data), gap in ops:
        at = at + dt.timedelta(seconds=gap)  # gaps of 0: several events at the same instant
        generated.append({"type": event_type, "data": data, "at": at})
    # Append in a few batches so snapshots are taken along the way (every 3 versions).
    version = 0
    for start in range(0, len(generated), 4):
        chunk = generated[start : start + 4]
        store.append_many(
            COUNTER,
            agg,
            [NewEvent(g["type"], g["data"], occurred_at=g["at"]) for g in chunk],
            expected_version=version,
        )
        version += len(chunk)
    assert Snapshot.objects.filter(aggregate_id=agg).count() == len(generated) // 3
    for probe in probes:
        moment = T0 + dt.timedelta(seconds=probe)
        fast = store.state_at(COUNTER, agg, moment)
        assert fast.state == _naive(generated, moment)
        assert fast.state == store.state_at(COUNTER, agg, moment, use_snapshots=False).state
        assert fast.version == sum(1 for g in generated if g["at"] <= moment)


@pytest.mark.django_db
def test_state_at_uses_the_latest_snapshot_before_t_and_replays_only_the_rest():
    store = EventStore.control()
    agg = str(uuid.uuid4())
    store.append_many(
        COUNTER,
        agg,
        [NewEvent("test.added", {"amount": 1}, occurred_at=T0 + dt.timedelta(minutes=i)) for i in range(10)],
        expected_version=0,
    )
    result = store.state_at(COUNTER, agg, T0 + dt.timedelta(minutes=7, seconds=30))
    assert result.state == {"total": 8, "count": 8}
    assert (result.from_snapshot_version, result.replayed) == (6, 2)


@pytest.mark.django_db
def test_an_event_may_not_be_dated_before_the_previous_one_of_its_stream():
    from events.store import EventStoreError

    store = EventStore.control()
    agg = str(uuid.uuid4())
    store.append(COUNTER, agg, "test.added", {"amount": 1}, occurred_at=T0, expected_version=0)
    with pytest.raises(EventStoreError, match="before the previous event"):
        store.append(
            COUNTER, agg, "test.added", {"amount": 1}, occurred_at=T0 - dt.timedelta(days=1), expected_version=1
        )


@pytest.mark.django_db
def test_old_event_versions_are_upcast_on_read_and_new_ones_written_at_the_current_version():
    store = EventStore.control()
    agg = str(uuid.uuid4())
    # Written before the schema change: v1 had "name".
    store.append(COUNTER, agg, "test.renamed", {"name": "old shape"}, event_version=1, expected_version=0)

    @upcasting.upcaster("test.renamed", from_version=1)
    def _v1_to_v2(data):
        return {"title": data.pop("name")}

    try:
        assert upcasting.current_version("test.renamed") == 2
        new = store.append(COUNTER, agg, "test.renamed", {"title": "new shape"}, expected_version=1)
        assert new.event_version == 2
        old, _ = store.stream(COUNTER, agg)
        assert (old.stored_event_version, old.event_version, old.event_data) == (1, 2, {"title": "old shape"})
        assert store.state_at(COUNTER, agg, old.occurred_at).state == {"title": "old shape"}
        assert store.verify_chain(COUNTER, agg).ok  # the stored row is untouched
    finally:
        upcasting.unregister("test.renamed", from_version=1)


@pytest.mark.django_db
def test_the_aggregate_state_command_prints_json_at_a_given_instant():
    store = EventStore.control()
    agg = str(uuid.uuid4())
    store.append(COUNTER, agg, "test.added", {"amount": 5}, occurred_at=T0, expected_version=0)
    store.append(COUNTER, agg, "test.added", {"amount": 7}, occurred_at=T0 + dt.timedelta(days=2), expected_version=1)
    out = StringIO()
    call_command("aggregate_state", COUNTER, agg, "--at", "2026-01-02T00:00:00Z", stdout=out)
    printed = json.loads(out.getvalue())
    assert printed["state"] == {"total": 5, "count": 1} and printed["version"] == 1
    out = StringIO()
    call_command("aggregate_state", COUNTER, agg, stdout=out)
    assert json.loads(out.getvalue())["state"] == {"total": 12, "count": 2}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "yesterday"], "is not an ISO 8601"),
        (["--tenant", "no-such-tenant"], "There is no tenant"),
        ([], "has no events"),
    ],
)
def test_the_aggregate_state_command_fails_with_one_sentence(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("aggregate_state", COUNTER, str(uuid.uuid4()), *args)


@pytest.mark.django_db
def test_text_postgresql_cannot_store_is_refused_with_one_sentence():
    from events.store import EventStoreError

    with pytest.raises(EventStoreError, match="NUL"):
        EventStore.control().append(COUNTER, str(uuid.uuid4()), "test.renamed", {"title": "a\x00b"})
