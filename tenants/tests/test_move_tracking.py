"""Change tracking during a move: writes, updates and deletes made while the bulk copy runs, and
after the catch-up (the frozen delta), all land in the target; the frozen step reads only the rows
changed after the catch-up; tracking is removed from the source; a change tracking could not see is
caught by the verification."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connections

from core import dbroles
from tenants.context import tenant_context
from tenants.models import Placement, Tenant, TenantMove
from tenants.moves import copy, tracking
from tenants.tests.test_moves import data_of, move_and_run, purge, with_ledger
from workspace import ledger
from workspace.models import Account, Member

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])


@pytest.fixture(autouse=True)
def _ready(tenancy_templates, allow_tenant_aliases, settings):
    settings.TENANCY_MOVE_PURGE_GRACE_SECONDS = 0


def write_some(tenant: Tenant, tag: str) -> dict[str, Any]:
    """One insert, one update, one delete of members and a deposit (events + a balance update)."""
    with tenant_context(tenant) as alias:
        members = list(Member.objects.using(alias).exclude(name__startswith="New ").order_by("pk"))
        added = Member.objects.using(alias).create(name=f"New {tag}", email=f"new-{tag}@example.test")
        Member.objects.using(alias).filter(pk=members[0].pk).update(name=f"Renamed {tag}")
        Member.objects.using(alias).filter(pk=members[-1].pk).delete()
        account = Account.objects.using(alias).order_by("pk")[0]
    with tenant_context(tenant):
        ledger.ledger_deposit(account_id=account.pk, amount="7.00", note=tag)
    return {"added": added.pk, "renamed": members[0].pk, "deleted": members[-1].pk}


def tracking_left(placement: Placement, move_id: Any) -> tuple[int, int]:
    """(triggers, change rows) of the move left in the placement's database, read as the bootstrap superuser."""
    database = placement.db_name or connections.settings["owner"]["NAME"]
    hexid = str(move_id).replace("-", "")
    with dbroles.admin_connect(database) as admin:
        triggers = admin.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE %s", [f"\\_move\\_{hexid}%"]
        ).fetchone()
        exists = admin.execute("SELECT to_regclass('tenancy_move.change') IS NOT NULL").fetchone()
        changes = (
            admin.execute("SELECT count(*) FROM tenancy_move.change WHERE move_id = %s", [str(move_id)]).fetchone()
            if exists == (True,)
            else (0,)
        )
    assert triggers is not None and changes is not None
    return int(triggers[0]), int(changes[0])


# Into a pool only from a pool: a schema or database source's low kept ids can collide with rows that
# earlier tests left in the test database's pool schemas (test_moves covers those directions).
@pytest.mark.parametrize(
    ("source", "target"),
    [("shared", "dedicated"), ("shared", "shared"), ("schema", "dedicated"), ("dedicated", "schema")],
)
def test_writes_updates_and_deletes_during_the_copy_and_after_the_catch_up_all_land(
    make_tenant, monkeypatch, source, target
):
    tenant = with_ledger(make_tenant(source))
    neighbour = with_ledger(make_tenant(source)) if source == "shared" else None
    neighbour_before = data_of(neighbour) if neighbour else None
    source_placement = tenant.placement
    done: dict[str, Any] = {}
    real_bulk, real_catch_up = copy.bulk_copy, copy.catch_up

    def bulk_then_write(*args: Any, **kw: Any) -> Any:
        copied = real_bulk(*args, **kw)  # its snapshot is taken: these changes are not in it
        done["bulk"] = write_some(tenant, "bulk")
        return copied

    def catch_up_then_write(*args: Any, **kw: Any) -> Any:
        result = real_catch_up(*args, **kw)  # these land in the frozen delta only
        done["late"] = write_some(tenant, "late")
        done["expected"] = data_of(tenant)
        return result

    monkeypatch.setattr(copy, "bulk_copy", bulk_then_write)
    monkeypatch.setattr(copy, "catch_up", catch_up_then_write)
    move = move_and_run(tenant, target)

    assert move.state == TenantMove.State.SWITCHED, move.error
    tenant.refresh_from_db()
    assert tenant.placement_id != source_placement.pk
    after = data_of(tenant)
    assert after == done["expected"]
    ids = {pk for pk, *_ in after["members"]}
    with tenant_context(tenant) as alias:
        names = dict(Member.objects.using(alias).values_list("pk", "name"))
    for tag in ("bulk", "late"):
        assert done[tag]["added"] in ids
        assert done[tag]["deleted"] not in ids
    assert names[done["bulk"]["renamed"]] == "Renamed late"  # the same row changed twice: the last value
    assert len(after["events"]) == len(done["expected"]["events"])  # both deposits' events, in order
    # The frozen step read only what changed after the catch-up: 1 insert, 1 update, 1 delete of members.
    assert move.tables["workspace_member"]["changed"] == 3
    assert move.tables["workspace_member"]["checksum"] == move.tables["workspace_member"]["target_checksum"]
    assert move.delta_rows > 0
    if neighbour:
        assert data_of(neighbour) == neighbour_before
    assert purge(move).state == TenantMove.State.PURGED  # removes the tracking before deleting
    assert data_of(tenant) == done["expected"]
    if source == "shared":  # the pool stays: nothing of the tracking is left in it
        assert tracking_left(source_placement, move.pk) == (0, 0)


def test_a_change_the_tracking_cannot_see_fails_the_verification_and_the_move_compensates(make_tenant, monkeypatch):
    tenant = with_ledger(make_tenant("shared"))
    source_placement = tenant.placement
    real_bulk = copy.bulk_copy

    def bulk_then_untracked_update(*args: Any, **kw: Any) -> Any:
        copied = real_bulk(*args, **kw)
        # Triggers off for this session (superuser only): the tracking never hears of this update.
        with dbroles.admin_connect(connections.settings["owner"]["NAME"]) as admin:
            admin.execute("SET session_replication_role = replica")
            admin.execute(
                f"UPDATE {source_placement.schema_name}.workspace_member SET name = 'Unseen' "  # noqa: S608 - test-made name
                "WHERE id = (SELECT min(id) FROM "
                f"{source_placement.schema_name}.workspace_member WHERE tenant_id = %s)",
                [str(tenant.pk)],
            )
        return copied

    monkeypatch.setattr(copy, "bulk_copy", bulk_then_untracked_update)
    move = move_and_run(tenant, "schema")

    assert move.state == TenantMove.State.COMPENSATED
    assert "checksums of workspace_member differ" in move.error
    tenant.refresh_from_db()
    assert (tenant.status, tenant.placement_id) == (Tenant.Status.ACTIVE, source_placement.pk)
    assert tracking_left(source_placement, move.pk) == (0, 0)


def test_tracking_records_only_the_moving_tenants_rows_and_is_removed_cleanly(make_tenant):
    tenant = with_ledger(make_tenant("shared"))
    neighbour = with_ledger(make_tenant("shared"))
    move_id = "00000000-0000-4000-8000-00000000abcd"
    conn = copy.connect(tenant.placement, tenant.pk)
    try:
        tracking.install(conn, move_id=move_id, tenant_id=tenant.pk, tables=copy.tenant_tables())
        tracking.install(conn, move_id=move_id, tenant_id=tenant.pk, tables=copy.tenant_tables())  # idempotent
        write_some(tenant, "mine")
        write_some(neighbour, "theirs")
        conn.rollback()
        keys = tracking.changed_keys(conn, move_id=move_id)
        conn.rollback()
        assert len(keys["workspace_member"]) == 3
        assert len(keys["tenantlog_event"]) >= 1 and "workspace_account" in keys
        with tenant_context(neighbour) as alias:
            theirs = {str(pk) for pk in Member.objects.using(alias).values_list("pk", flat=True)}
        assert not theirs & set(keys["workspace_member"])
        tracking.uninstall(conn, move_id=move_id, tables=copy.tenant_tables())
        tracking.uninstall(conn, move_id=move_id, tables=copy.tenant_tables())  # safe to repeat
    finally:
        conn.close()
    assert tracking_left(tenant.placement, move_id) == (0, 0)
