"""Moves between isolation levels: every direction through the real saga, nothing lost, nothing left.

Each move runs the `tenant.move` saga's jobs in this process through the job engine (what a
worker does); the purge job runs with a zero grace period.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.db import connections
from django.utils import timezone

from core import dbroles
from core.actors import SystemActor
from core.errors import Conflict, InvalidInput
from jobs import services as jobs_services
from jobs.services import jobs_work_inline
from sagas.models import SagaState
from sagas.services import saga_run_inline
from tenants import placements
from tenants.context import tenant_context
from tenants.logs import tenant_log_store
from tenants.models import Placement, Tenant, TenantMove
from tenants.moves.services import tenant_move
from tests.support import faults
from workspace import ledger
from workspace.models import Account, Member

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])
ACTOR = SystemActor("tests")


@pytest.fixture(autouse=True)
def _ready(tenancy_templates, allow_tenant_aliases, settings):
    settings.TENANCY_MOVE_PURGE_GRACE_SECONDS = 0


def with_ledger(tenant: Tenant, deposits: int = 5) -> Tenant:
    with tenant_context(tenant) as alias:
        accounts = list(Account.objects.using(alias).order_by("pk"))
    for i in range(deposits):
        with tenant_context(tenant):
            ledger.ledger_deposit(account_id=accounts[i % len(accounts)].pk, amount=f"{i + 1}.25", note=f"d{i}")
    with tenant_context(tenant):
        ledger.ledger_transfer(from_id=accounts[0].pk, to_id=accounts[1].pk, amount="3.00")
    return tenant


def data_of(tenant: Tenant) -> dict[str, Any]:
    """Everything a user of the workspace would notice, read in the tenant's own context."""
    tenant = Tenant.objects.select_related("placement").get(pk=tenant.pk)
    with tenant_context(tenant) as alias:
        members = sorted(Member.objects.using(alias).values_list("pk", "email", "password", "is_admin"))
        accounts = sorted(Account.objects.using(alias).values_list("pk", "name", "balance"))
        balances = {pk: str(ledger.ledger_balance_at(account_id=pk, at=timezone.now())) for pk, _, _ in accounts}
    log = tenant_log_store(tenant)
    with log.session() as alias, connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT event_uuid, aggregate_id, version, event_type, event_data::text, hash FROM tenantlog_event "
            "ORDER BY event_id"
        )
        events = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in cursor.fetchall()]
    return {"members": members, "accounts": accounts, "balances": balances, "events": events}


def move_and_run(tenant: Tenant, to: str, **kw: Any) -> TenantMove:
    move = tenant_move(tenant=tenant, to=to, actor=ACTOR, **kw)
    saga = saga_run_inline(saga_id=move.saga_id, timeout=120)
    move.refresh_from_db()
    assert saga.state in (SagaState.COMPLETED, SagaState.COMPENSATED), saga.error
    return move


def purge(move: TenantMove) -> TenantMove:
    jobs_work_inline(group=("tenant_move", move.pk), timeout=60)
    move.refresh_from_db()
    return move


def schemas() -> set[str]:
    with psycopg.connect(**dbroles.conninfo(connections.settings["owner"])) as conn:
        return {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}


def rows_in(placement: Placement, tenant_id: Any) -> int:
    """The tenant's rows left in a pool (read as the superuser: RLS hides them from everyone else)."""
    with dbroles.admin_connect(connections.settings["owner"]["NAME"]) as admin:
        total = 0
        for table in ("workspace_member", "workspace_account", "tenantlog_event"):
            row = admin.execute(
                f"SELECT count(*) FROM {placement.schema_name}.{table} WHERE tenant_id = %s",  # noqa: S608 - test-made names
                [str(tenant_id)],
            ).fetchone()
            total += row[0] if row else 0
    return total


DIRECTIONS = [
    ("shared", "schema"),
    ("shared", "dedicated"),
    ("shared", "shared"),
    ("schema", "shared"),
    ("schema", "dedicated"),
    ("dedicated", "shared"),
    ("dedicated", "schema"),
    ("dedicated", "dedicated"),
]


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_a_move_keeps_every_row_and_event_and_then_purges_the_source(make_tenant, source, target):
    tenant = with_ledger(make_tenant(source))
    neighbour = with_ledger(make_tenant(source)) if source == "shared" else None
    before = data_of(tenant)
    neighbour_before = data_of(neighbour) if neighbour else None
    old = Placement.objects.get(pk=tenant.placement_id)

    move = move_and_run(tenant, target)

    assert move.state == TenantMove.State.SWITCHED, move.error
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    assert tenant.isolation == target
    assert tenant.placement_id != old.pk
    assert tenant.placement.kind == {"shared": "pool", "schema": "schema", "dedicated": "database"}[target]
    assert data_of(tenant) == before
    assert tenant_log_store(tenant).verify_chain().ok
    assert move.rows_copied >= move.rows_total > 0
    assert move.freeze_seconds is not None and move.freeze_seconds < 30
    assert all(v["rows"] == v["target_rows"] for v in move.tables.values())
    if neighbour:
        assert data_of(neighbour) == neighbour_before

    move = purge(move)
    assert move.state == TenantMove.State.PURGED
    if old.kind == Placement.Kind.POOL:
        assert Placement.objects.filter(pk=old.pk).exists()  # the pool stays for its other tenants
        assert rows_in(old, tenant.pk) == 0
    elif old.kind == Placement.Kind.SCHEMA:
        assert not Placement.objects.filter(pk=old.pk).exists()
        assert old.schema_name not in schemas()
    else:
        assert not Placement.objects.filter(pk=old.pk).exists()
        assert not placements.database_exists(old.db_name)
    assert data_of(tenant) == before
    if neighbour:
        assert data_of(neighbour) == neighbour_before


def test_the_moved_tenant_takes_new_writes_with_new_ids_that_do_not_collide(make_tenant):
    tenant = with_ledger(make_tenant("schema"))
    make_tenant("shared")  # a pool with another tenant's low ids in it
    move_and_run(tenant, "shared")
    tenant.refresh_from_db()
    with tenant_context(tenant) as alias:
        account = Account.objects.using(alias).order_by("pk").first()
        ledger.ledger_deposit(account_id=account.pk, amount="1.00")
        Member.objects.using(alias).create(name="After", email="after@example.test")
    assert tenant_log_store(tenant).verify_chain().ok


def test_a_failure_before_the_switch_compensates_to_the_untouched_source(make_tenant, monkeypatch):
    monkeypatch.setattr(jobs_services, "_fault_hook", lambda: faults.inject)  # the test settings' hook
    tenant = with_ledger(make_tenant("shared"))
    before = data_of(tenant)
    old = tenant.placement_id
    move = move_and_run(tenant, "schema", fault={"step": "freeze_and_switch", "mode": "raise"})
    assert move.state == TenantMove.State.COMPENSATED
    assert move.error
    tenant.refresh_from_db()
    assert (tenant.status, tenant.placement_id, tenant.isolation) == (Tenant.Status.ACTIVE, old, "shared")
    assert data_of(tenant) == before
    assert not Placement.objects.filter(
        kind="schema", schema_name__startswith=f"t_{tenant.slug.replace('-', '_')}"
    ).exists()
    assert not any(s.startswith(f"t_{tenant.slug.replace('-', '_')}") for s in schemas())


def test_bad_moves_are_refused_with_one_sentence(make_tenant):
    tenant = make_tenant("schema", seed=False)
    with pytest.raises(InvalidInput, match="already has its own schema"):
        tenant_move(tenant=tenant, to="schema", actor=ACTOR)
    with pytest.raises(InvalidInput, match="must be one of"):
        tenant_move(tenant=tenant, to="cloud\x00", actor=ACTOR)
    with pytest.raises(InvalidInput, match="no database server"):
        tenant_move(tenant=tenant, to="dedicated", server="nowhere", actor=ACTOR)
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
    with pytest.raises(Conflict, match="only an active tenant"):
        tenant_move(tenant=tenant, to="shared", actor=ACTOR)
    assert not TenantMove.objects.filter(tenant=tenant).exists()
