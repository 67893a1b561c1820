"""Offboarding: typed confirmation, grace period and restore, the deletion saga at every level,
keys destroyed before data, domains released, and a schema too big for one DROP's lock table."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connections
from django.test import Client
from psycopg import sql

from core import dbroles
from core.actors import SystemActor
from core.errors import Conflict, InvalidInput
from jobs.services import jobs_work_inline
from sagas.models import SagaState
from sagas.services import saga_run_inline
from tenants import placements
from tenants.context import tenant_context
from tenants.models import Domain, Placement, Tenant, TenantDeletion
from tenants.offboarding.services import tenant_delete, tenant_delete_cancel
from tenants.tests.test_moves import data_of, with_ledger
from workspace.models import Member

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])
ACTOR = SystemActor("tests")


@pytest.fixture(autouse=True)
def _ready(tenancy_templates, allow_tenant_aliases):
    return None


def run_deletion(deletion: TenantDeletion) -> TenantDeletion:
    jobs_work_inline(group=("tenant_deletion", deletion.pk), timeout=60)
    deletion.refresh_from_db()
    assert deletion.saga_id, "the start job did not start the saga"
    saga = saga_run_inline(saga_id=deletion.saga_id, timeout=300)
    assert saga.state == SagaState.COMPLETED, saga.error
    deletion.refresh_from_db()
    return deletion


def erase_a_subject(tenant: Tenant) -> int:
    """Give the tenant a subject key (personal data encrypted for one person) to shred; returns how
    many keys the tenant has now (members' joining events have theirs too)."""
    with tenant_context(tenant) as alias, connections[alias].cursor() as cursor:
        cursor.execute(
            "INSERT INTO tenantlog_subjectkey (tenant_id, subject_id, key, created_at, erasure_reason) "
            "VALUES (%s, 'member:1', '\\x00'::bytea, now(), '')",
            [str(tenant.pk)],
        )
        cursor.execute("SELECT count(*) FROM tenantlog_subjectkey WHERE tenant_id = %s", [str(tenant.pk)])
        return int(cursor.fetchone()[0])


@pytest.mark.parametrize("isolation", ["shared", "schema", "dedicated"])
def test_a_deleted_tenant_loses_its_data_keys_and_domains_and_the_neighbour_nothing(make_tenant, isolation):
    tenant = with_ledger(make_tenant(isolation))
    keys = erase_a_subject(tenant)
    neighbour = make_tenant("shared")
    neighbour_before = data_of(neighbour)
    placement = Placement.objects.get(pk=tenant.placement_id)
    deletion = tenant_delete(tenant=tenant, confirm=tenant.slug, actor=ACTOR, grace_seconds=0, reason="churned")
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.DELETING
    assert Client(HTTP_HOST=f"{tenant.slug}.localhost").get("/login/").status_code == 404

    deletion = run_deletion(deletion)

    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.DELETED and tenant.placement_id is None and tenant.owner_email == ""
    assert deletion.state == TenantDeletion.State.DONE
    record = deletion.destroyed
    assert record["subject_keys"] == keys
    assert record["rows"]["workspace_member"] == 3 and record["rows"]["tenantlog_event"] > 0
    assert record["domains"] == [f"{tenant.slug}.localhost"]
    assert not Domain.objects.filter(tenant=tenant).exists()
    if isolation == "shared":
        assert Placement.objects.filter(pk=placement.pk).exists()  # the pool stays for the others
        with dbroles.admin_connect(connections.settings["owner"]["NAME"]) as admin:
            left = admin.execute(
                sql.SQL("SELECT count(*) FROM {}.workspace_member WHERE tenant_id = %s").format(
                    sql.Identifier(placement.schema_name)
                ),
                [str(tenant.pk)],
            ).fetchone()
        assert left == (0,)
    elif isolation == "schema":
        assert not placements.schema_exists(placement.schema_name)
        assert not Placement.objects.filter(pk=placement.pk).exists()
    else:
        assert not placements.database_exists(placement.db_name)
        assert not Placement.objects.filter(pk=placement.pk).exists()
    assert data_of(neighbour) == neighbour_before


def test_the_deletion_needs_the_slug_typed_and_an_active_or_suspended_tenant(make_tenant):
    tenant = make_tenant("shared", seed=False)
    for typed in ("", "wrong", tenant.slug.upper(), tenant.slug + "\x00"):
        with pytest.raises(InvalidInput, match="Type the tenant's slug"):
            tenant_delete(tenant=tenant, confirm=typed, actor=ACTOR)
    with pytest.raises(InvalidInput, match="grace period"):
        tenant_delete(tenant=tenant, confirm=tenant.slug, actor=ACTOR, grace_seconds=-1)
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE and not TenantDeletion.objects.filter(tenant=tenant).exists()
    tenant_delete(tenant=tenant, confirm=tenant.slug, actor=ACTOR)
    with pytest.raises(Conflict, match="cannot be deleted"):
        tenant_delete(tenant=tenant, confirm=tenant.slug, actor=ACTOR)


def test_a_deletion_cancelled_within_the_grace_period_restores_the_tenant_as_it_was(make_tenant):
    tenant = with_ledger(make_tenant("schema"))
    before = data_of(tenant)
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
    deletion = tenant_delete(tenant=tenant, confirm=tenant.slug, actor=ACTOR, grace_seconds=0)
    tenant_delete_cancel(tenant=tenant, actor=ACTOR)
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.SUSPENDED  # what it was, not simply active
    jobs_work_inline(group=("tenant_deletion", deletion.pk), timeout=60)  # the start job finds it cancelled
    deletion.refresh_from_db()
    assert deletion.state == TenantDeletion.State.CANCELLED and deletion.saga_id is None
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.ACTIVE)
    assert data_of(tenant) == before
    with pytest.raises(Conflict, match="no deletion that can still be cancelled"):
        tenant_delete_cancel(tenant=tenant, actor=ACTOR)


def test_a_schema_of_thousands_of_tables_is_deleted_without_running_out_of_shared_memory(make_tenant, settings):
    """django-tenants drops a schema with one DROP SCHEMA … CASCADE, which locks every table, index,
    sequence and TOAST table in one transaction; past the server's lock table that fails with "out
    of shared memory". Enough extra tables of 5 lockable objects each (sized from this server's lock
    table: 2,000 on a stock server, more on the embedded one) to exceed it, and the deletion still
    completes."""
    tenant = make_tenant("schema")
    schema = tenant.placement.schema_name
    with psycopg.connect(**dbroles.conninfo(connections.settings["owner"]), autocommit=True) as conn:
        locks = conn.execute(
            "SELECT current_setting('max_locks_per_transaction')::int * "
            "(current_setting('max_connections')::int + current_setting('max_prepared_transactions')::int)"
        ).fetchone()
        assert locks is not None
        tables = max(2000, (locks[0] // 5 // 100 + 2) * 100)  # whole hundreds, past the lock table
        assert tables * 5 > locks[0], "the test must exceed the lock table to prove anything"
        for start in range(0, tables, 100):  # a transaction per 100 tables
            with conn.transaction():
                for i in range(start, start + 100):
                    name = sql.Identifier(schema, f"extra_{i}")
                    conn.execute(sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, v text)").format(name))
                    conn.execute(
                        sql.SQL("INSERT INTO {} (v) SELECT repeat('x', 10) FROM generate_series(1, 20)").format(name)
                    )
    with tenant_context(tenant) as alias:
        assert Member.objects.using(alias).count() == 3
    deletion = run_deletion(tenant_delete(tenant=tenant, confirm=tenant.slug, actor=ACTOR, grace_seconds=0))
    assert deletion.destroyed["tables_dropped"] >= tables
    assert not placements.schema_exists(schema)
