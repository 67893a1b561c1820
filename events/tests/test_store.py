"""The control-plane event store: append, immutability, grants, concurrency, hash chain."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection, connections, transaction
from django.db.utils import DatabaseError

from events.services import control_event_append
from events.store import ConcurrencyError, EventStore, EventStoreError


def _stream() -> str:
    return str(uuid.uuid4())


@pytest.mark.django_db
def test_it_appends_with_versions_and_a_hash_chain():
    agg = _stream()
    first = control_event_append(
        aggregate_type="tenant", aggregate_id=agg, event_type="tenant.created", data={"status": "pending"}
    )
    second = control_event_append(
        aggregate_type="tenant",
        aggregate_id=agg,
        event_type="tenant.status_changed",
        data={"status": "active"},
        expected_version=1,
    )
    assert (first.version, second.version) == (1, 2)
    assert first.prev_hash is None and bytes(second.prev_hash) == bytes(first.hash)
    assert second.tx_id > 0 and second.event_id > first.event_id
    assert str(second.tenant_id) == agg
    assert EventStore.control().state_at("tenant", agg).state == {"status": "active"}
    assert EventStore.control().verify_chain("tenant", agg).ok


@pytest.mark.django_db
def test_it_refuses_a_stale_expected_version_and_keeps_the_transaction_usable():
    agg = _stream()
    control_event_append(aggregate_type="account", aggregate_id=agg, event_type="opened", data={}, expected_version=0)
    with transaction.atomic():
        with pytest.raises(ConcurrencyError, match="changed concurrently"):
            control_event_append(
                aggregate_type="account", aggregate_id=agg, event_type="opened", data={}, expected_version=0
            )
        # the same transaction can go on
        control_event_append(
            aggregate_type="account", aggregate_id=agg, event_type="renamed", data={"n": 1}, expected_version=1
        )
    assert EventStore.control().current_version("account", agg) == 2


@pytest.mark.django_db
def test_it_refuses_a_version_gap_with_one_sentence():
    with pytest.raises(EventStoreError, match="does not follow an existing version"):
        control_event_append(
            aggregate_type="account", aggregate_id=_stream(), event_type="x", data={}, expected_version=4
        )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement", ["UPDATE events_event SET event_type = 'x'", "DELETE FROM events_event", "TRUNCATE events_event"]
)
def test_the_app_role_can_neither_change_nor_remove_events(statement):
    control_event_append(aggregate_type="account", aggregate_id=_stream(), event_type="opened", data={})
    with pytest.raises(DatabaseError, match="permission denied|immutable"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE table_name = 'events_event' AND grantee = current_user ORDER BY 1"
        )
        assert [row[0] for row in cursor.fetchall()] == ["INSERT", "SELECT"]


@pytest.mark.django_db(databases=["default", "owner"])
@pytest.mark.parametrize(
    "statement", ["UPDATE events_event SET event_type = 'x'", "DELETE FROM events_event", "TRUNCATE events_event"]
)
def test_even_the_owner_cannot_change_or_remove_events(statement):
    # Only the owner connection touches the table here: an app-role transaction would hold a lock TRUNCATE waits for.
    owner = connections["owner"]
    with pytest.raises(DatabaseError, match="events are immutable"):
        with transaction.atomic(using="owner"), owner.cursor() as cursor:
            cursor.execute(
                "INSERT INTO events_event (event_uuid, aggregate_type, aggregate_id, version, event_type, "
                "event_version, event_data, event_metadata) VALUES (gen_random_uuid(), 'a', 'b', 1, 'c', 1, '{}', '{}')"
            )
            cursor.execute(statement)


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_appends_at_the_same_version_have_exactly_one_winner():
    agg = _stream()
    control_event_append(aggregate_type="account", aggregate_id=agg, event_type="opened", data={}, expected_version=0)
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                control_event_append(
                    aggregate_type="account",
                    aggregate_id=agg,
                    event_type="deposited",
                    data={"n": n},
                    expected_version=1,
                )
            result = "won"
        except ConcurrencyError:
            result = "conflict"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 19 + ["won"]
    events = EventStore.control().stream("account", agg)
    assert [e.version for e in events] == [1, 2]
    assert EventStore.control().verify_chain("account", agg).ok


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_appends_without_expected_version_all_land_in_order():
    agg = _stream()
    barrier = threading.Barrier(20)

    def writer(n: int) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                control_event_append(aggregate_type="account", aggregate_id=agg, event_type="deposited", data={"n": n})
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = EventStore.control().stream("account", agg)
    assert [e.version for e in events] == list(range(1, 21))
    assert sorted(e.event_data["n"] for e in events) == list(range(20))
    assert EventStore.control().verify_chain("account", agg).ok


@pytest.mark.django_db
def test_the_kept_cursor_goes_with_its_connection():
    """The append path keeps one psycopg cursor per connection; a closed connection must not stay alive
    because of it (a WeakKeyDictionary with the cursor as value kept every one: the cursor refers to it).

    A connection of its own, not Django's: Django's pool and test machinery may hold theirs for reasons
    of their own, which made this flaky when it used Django's connection."""
    import gc
    import weakref

    import psycopg

    from core import dbroles
    from events import store

    raw = psycopg.connect(**dbroles.conninfo(connections["default"].settings_dict), autocommit=True)
    assert store._own_cursor(raw) is store._own_cursor(raw)  # kept, not made per append
    store._own_cursor(raw).execute("SELECT 1")
    gone = weakref.ref(raw)
    raw.close()
    del raw
    gc.collect()
    assert gone() is None
