"""Tenant event logs live inside each tenant's placement and are isolated at every level."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import DatabaseError, connections, transaction

from core import dbroles
from events import crypto
from tenants.context import tenant_context
from tenants.logs import tenant_log_store as tenant_store
from tests.support.tenancy import ISOLATIONS

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_each_tenant_log_shows_only_its_own_events_even_for_the_same_aggregate_id(tenant_world, isolation):
    a, b = tenant_world[isolation]
    tenant_store(a).append("note", "shared-id", "note.written", {"text": f"from {a.slug}"}, expected_version=0)
    tenant_store(b).append("note", "shared-id", "note.written", {"text": f"from {b.slug}"}, expected_version=0)
    [mine] = tenant_store(a).stream("note", "shared-id")
    assert mine.event_data == {"text": f"from {a.slug}"} and mine.version == 1 and mine.tenant_id == a.pk
    assert tenant_store(b).state_at("note", "shared-id").state == {"text": f"from {b.slug}"}
    assert tenant_store(a).verify_chain().ok


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_raw_sql_in_one_tenant_cannot_read_or_forge_another_tenants_events(tenant_world, isolation):
    a, b = tenant_world[isolation]
    tenant_store(b).append("note", "secret", "note.written", {"text": "b only"})
    with tenant_context(a) as alias, connections[alias].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tenantlog_event WHERE tenant_id = %s", [b.pk])
        assert cursor.fetchone()[0] == 0
        with pytest.raises(DatabaseError, match="row-level security"):
            with transaction.atomic(using=alias):
                cursor.execute(
                    "INSERT INTO tenantlog_event (event_uuid, tenant_id, aggregate_type, aggregate_id, version, "
                    "event_type, event_version, event_data, event_metadata) "
                    "VALUES (gen_random_uuid(), %s, 'note', 'forged', 1, 'x', 1, '{}', '{}')",
                    [b.pk],
                )


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("statement", ["UPDATE tenantlog_event SET event_type = 'x'", "DELETE FROM tenantlog_event"])
def test_tenant_logs_are_immutable_in_every_placement(tenant_world, isolation, statement):
    a, _ = tenant_world[isolation]
    tenant_store(a).append("note", "n1", "note.written", {"text": "keep me"})
    with tenant_context(a) as alias, connections[alias].cursor() as cursor:
        with pytest.raises(DatabaseError, match="permission denied|immutable"):
            with transaction.atomic(using=alias):
                cursor.execute(statement)
        cursor.execute(
            "SELECT has_table_privilege('tenantlog_event', 'UPDATE'), has_table_privilege('tenantlog_event', 'DELETE')"
        )
        assert cursor.fetchone() == (False, False)


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_tenant_events_are_stored_in_the_tenants_placement_and_nowhere_else(tenant_world, isolation):
    a, _ = tenant_world[isolation]
    event = tenant_store(a).append("note", "where", "note.written", {"text": "here"})
    with tenant_context(a) as alias, connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT current_database(), n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = 'tenantlog_event'::regclass"
        )
        database, schema = cursor.fetchone()
    assert schema == a.placement.schema_name
    control_db = settings.DATABASES["default"]["NAME"]
    assert (database != control_db) == (isolation == "dedicated")
    # The control plane's `public` copy never holds it (read as the bootstrap superuser, past RLS).
    with dbroles.admin_connect(control_db) as admin:
        found = admin.execute("SELECT count(*) FROM public.tenantlog_event WHERE event_uuid = %s", [event.event_uuid])
        assert found.fetchone()[0] == 0


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_erasing_a_subject_key_makes_its_personal_data_unreadable_but_keeps_the_chain(tenant_world, isolation):
    a, _ = tenant_world[isolation]
    store = tenant_store(a)
    store.append(
        "member", "m-42", "member.joined", {"email": crypto.Personal("m-42", "ann@example.test"), "plan": "team"}
    )
    assert store.state_at("member", "m-42").state == {"email": "ann@example.test", "plan": "team"}
    [stored] = store.stream("member", "m-42")
    assert "ann@example.test" not in str(stored.event_data)  # ciphertext at rest
    assert crypto.subject_erase(store, "m-42", reason="GDPR art. 17 request")
    assert store.state_at("member", "m-42").state == {"email": crypto.ERASED, "plan": "team"}
    assert store.verify_chain("member", "m-42").ok
    from events.store import EventStoreError

    with pytest.raises(EventStoreError, match="was erased"):
        store.append("member", "m-42", "member.renamed", {"email": crypto.Personal("m-42", "again@example.test")})


FORGED = b"\x01" * 32
INSERT_WITH_CHAIN = (
    "INSERT INTO tenantlog_event (event_uuid, tenant_id, aggregate_type, aggregate_id, version, event_type, "
    "event_version, event_data, event_metadata, occurred_at, prev_hash, hash) "
    "VALUES (gen_random_uuid(), %s, 'note', %s, 1, 'x', 1, '{}', '{}', now(), NULL, %s) RETURNING hash"
)


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_only_the_owner_in_a_move_copy_has_a_given_chain_kept_and_the_app_role_cannot_forge_one(
    tenant_world, isolation
):
    """The insert trigger takes `hash` as given only for a role that may put triggers on the table (the
    owner) with the move's setting on (events/ddl.py TRUSTED_CHAIN); the data-plane role asking the
    same gets the chain computed."""
    from events.ddl import TRUSTED_CHAIN_SETTING
    from tenants.moves import copy

    a, _ = tenant_world[isolation]
    with tenant_context(a) as alias, connections[alias].cursor() as cursor:
        with transaction.atomic(using=alias):
            cursor.execute("SELECT current_user, set_config(%s, 'on', true)", [TRUSTED_CHAIN_SETTING])
            assert cursor.fetchone()[0] == connections[alias].settings_dict["USER"]  # the data-plane role
            cursor.execute("SELECT has_table_privilege('tenantlog_event', 'TRIGGER')")
            assert cursor.fetchone()[0] is False
            cursor.execute(INSERT_WITH_CHAIN, [a.pk, "by-app", FORGED])
            assert bytes(cursor.fetchone()[0]) != FORGED
    assert tenant_store(a).verify_chain().ok

    a.placement.refresh_from_db()
    owner = copy.connect(a.placement, a.pk)
    try:
        (plain,) = owner.execute(INSERT_WITH_CHAIN, [str(a.pk), "by-owner", FORGED]).fetchone()
        assert bytes(plain) != FORGED  # the owner too, unless it says it is copying
        owner.execute("SELECT set_config(%s, 'on', true)", [TRUSTED_CHAIN_SETTING])
        (kept,) = owner.execute(INSERT_WITH_CHAIN, [str(a.pk), "copied", FORGED]).fetchone()
        assert bytes(kept) == FORGED
        assert copy.chain_breaks(owner, a.pk, end=False) == 1  # what a move checks after its copy
    finally:
        owner.rollback()
        owner.close()
