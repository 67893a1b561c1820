"""Checks that read every placement, against real tenants of each isolation level (tenant_world):
RLS forced with its policies, runtime roles, schema drift, event hash chains, data outside every placement.

Each failing case breaks one thing in one placement through a separate connection (committed, so the
check sees it as it would in production), asserts the check names it, and puts it back. The passing
cases assert that nothing is wrong with *these* placements: other modules of a full run may leave
placements of their own behind, which are not this test's business.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from core import dbroles
from tenants.crypto import decrypt_json

pytestmark = pytest.mark.django_db(databases="__all__")


@contextmanager
def superuser(dbname: str | None = None) -> Iterator[psycopg.Connection]:
    with dbroles.admin_connect(dbname or settings.DATABASES["owner"]["NAME"]) as conn:
        yield conn


@pytest.fixture(scope="module")
def tenant_events(tenant_world, django_db_blocker):
    """One committed event in each tenant's own log (outside any test transaction, as tenant_world is),
    so a superuser connection can change it behind the triggers' back."""
    from events.store import NewEvent
    from tenants.logs import tenant_log_store

    with django_db_blocker.unblock():
        for pair in tenant_world.values():
            for tenant in pair:
                tenant_log_store(tenant).append_many(
                    "probe", str(tenant.pk), [NewEvent("Probed", {"n": 1}), NewEvent("Probed", {"n": 2})]
                )
    return tenant_world


def _mine(problems: list[dict], world) -> list[dict]:
    placements = {str(t.placement.pk) for pair in world.values() for t in pair}
    return [p for p in problems if any(f"(placement {pk})" in str(p.get("placement", "")) for pk in placements)]


def test_rls_is_forced_with_policies_in_every_placement_of_every_level(tenant_world, allow_tenant_aliases, run_check):
    outcome = run_check("rls_forced")
    assert _mine(outcome.evidence["problems"], tenant_world) == []
    assert outcome.evidence["places"] >= 5  # template, public copies, the pool, two schemas, two databases
    assert "workspace_member" in outcome.evidence["tables"] and "tenantlog_event" in outcome.evidence["tables"]


def test_rls_fails_naming_the_table_and_the_schema_placement_without_force(
    tenant_world, allow_tenant_aliases, run_check
):
    placement = tenant_world["schema"][0].placement
    table = sql.SQL("{}.workspace_member").format(sql.Identifier(placement.schema_name))
    with superuser() as conn:
        conn.execute(sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(table))
    try:
        outcome = run_check("rls_forced")
    finally:
        with superuser() as conn:
            conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(table))
    assert outcome.status == "fail"
    assert {
        "placement": f"schema {placement.schema_name} (placement {placement.pk})",
        "schema": placement.schema_name,
        "table": "workspace_member",
        "problem": "RLS not forced",
    } in outcome.evidence["problems"]
    assert "workspace_member" in outcome.summary


def test_rls_fails_for_a_missing_policy_in_a_dedicated_database(tenant_world, allow_tenant_aliases, run_check):
    placement = tenant_world["dedicated"][1].placement
    with superuser(placement.db_name) as conn:
        conn.execute("ALTER POLICY tenant_isolation_delete ON workspace_account RENAME TO renamed_by_hand")
    try:
        outcome = run_check("rls_forced")
    finally:
        with superuser(placement.db_name) as conn:
            conn.execute("ALTER POLICY renamed_by_hand ON workspace_account RENAME TO tenant_isolation_delete")
    mine = _mine(outcome.evidence["problems"], tenant_world)
    assert mine == [
        {
            "placement": f"database {placement.db_name} (placement {placement.pk})",
            "schema": placement.schema_name,
            "table": "workspace_account",
            "problem": "policies missing: tenant_isolation_delete",
        }
    ]


def test_runtime_roles_hold_no_powers_and_fail_when_one_bypasses_rls(tenant_world, allow_tenant_aliases, run_check):
    outcome = run_check("runtime_roles")
    dedicated = tenant_world["dedicated"][0].placement
    assert [p for p in outcome.evidence["problems"] if p["database"] == dedicated.db_name] == []
    assert any(c["database"] == dedicated.db_name for c in outcome.evidence["checked"])
    app_role = decrypt_json(dedicated.credentials_encrypted)["app_user"]
    with superuser() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} BYPASSRLS").format(sql.Identifier(app_role)))
    try:
        outcome = run_check("runtime_roles")
    finally:
        with superuser() as conn:
            conn.execute(sql.SQL("ALTER ROLE {} NOBYPASSRLS").format(sql.Identifier(app_role)))
    assert outcome.status == "fail"
    assert {"database": dedicated.db_name, "role": app_role, "problem": "has BYPASSRLS"} in outcome.evidence["problems"]


def test_runtime_roles_fail_when_the_app_role_owns_a_table(tenant_world, allow_tenant_aliases, run_check):
    with superuser() as conn:
        conn.execute("CREATE TABLE public.compliance_test_owned (id int)")
        conn.execute(
            sql.SQL("ALTER TABLE public.compliance_test_owned OWNER TO {}").format(sql.Identifier(settings.DB_APP_ROLE))
        )
    try:
        outcome = run_check("runtime_roles")
    finally:
        with superuser() as conn:
            conn.execute("DROP TABLE public.compliance_test_owned")
    assert {
        "database": "control plane",
        "role": settings.DB_APP_ROLE,
        "problem": "owns 1 relations, 0 schemas",
    } in outcome.evidence["problems"]


def test_schema_drift_fails_naming_a_placement_with_a_hand_made_column(tenant_world, allow_tenant_aliases, run_check):
    outcome = run_check("schema_drift")
    assert _mine(outcome.evidence["problems"], tenant_world) == [], outcome.evidence["problems"]
    placement = tenant_world["schema"][1].placement
    table = sql.SQL("{}.workspace_account").format(sql.Identifier(placement.schema_name))
    with superuser() as conn:
        conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN added_by_hand int").format(table))
    try:
        outcome = run_check("schema_drift")
    finally:
        with superuser() as conn:
            conn.execute(sql.SQL("ALTER TABLE {} DROP COLUMN added_by_hand").format(table))
    assert {
        "placement": f"schema {placement.schema_name} (placement {placement.pk})",
        "problem": "tables differ from the template schema",
    } in outcome.evidence["problems"]


def _tamper(dbname: str, schema: str, tenant_id) -> tuple[int, str]:
    """Change one event's data behind the triggers' back (superuser, replica mode); returns (id, original)."""
    table = sql.SQL("{}.tenantlog_event").format(sql.Identifier(schema))
    with superuser(dbname) as conn:
        conn.execute("SET session_replication_role = replica")
        row = conn.execute(
            sql.SQL("SELECT event_id, event_data::text FROM {} WHERE tenant_id = %s ORDER BY event_id LIMIT 1").format(
                table
            ),
            [tenant_id],
        ).fetchone()
        assert row is not None, "the tenant_events fixture appended events to this log"
        event_id, data = row
        conn.execute(
            sql.SQL("UPDATE {} SET event_data = event_data || '{{\"tampered\": true}}' WHERE event_id = %s").format(
                table
            ),
            [event_id],
        )
    return event_id, data


def _untamper(dbname: str, schema: str, event_id: int, data: str) -> None:
    table = sql.SQL("{}.tenantlog_event").format(sql.Identifier(schema))
    with superuser(dbname) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            sql.SQL("UPDATE {} SET event_data = %s::jsonb WHERE event_id = %s").format(table), [data, event_id]
        )


@pytest.mark.parametrize("level", ["shared", "schema", "dedicated"])
def test_event_chains_fail_naming_a_tampered_event_in_a_tenant_log(
    level, tenant_events, allow_tenant_aliases, run_check, settings
):
    tenant_world = tenant_events
    tenant = tenant_world[level][0]
    placement = tenant.placement
    dbname = placement.db_name or settings.DATABASES["owner"]["NAME"]
    log = f"tenant:{tenant.pk}"
    before = run_check("event_chains")  # verifies everything and sets each log's checkpoint
    assert not [b for b in before.evidence["broken"] if b["log"] == log]
    event_id, data = _tamper(dbname, placement.schema_name, tenant.pk)  # an event before the checkpoint
    try:
        # Whether an incremental run re-reads this event depends on transactions elsewhere on the server
        # (the checkpoint only moves past events no open transaction can precede); the periodic full
        # re-verification reads it whatever the checkpoint says.
        settings.COMPLIANCE_CHAIN_FULL_HOURS = 0
        outcome = run_check("event_chains")
    finally:
        _untamper(dbname, placement.schema_name, event_id, data)
    assert outcome.status == "fail"
    broken = [b for b in outcome.evidence["broken"] if b["log"] == log]
    assert broken and broken[0]["event_id"] == event_id and broken[0]["problem"] == "hash mismatch"
    assert f"event {event_id}" in outcome.summary or len(outcome.evidence["broken"]) > 1


def test_stray_data_names_a_schema_outside_every_placement_and_one_whose_placement_is_gone(
    tenant_world, allow_tenant_aliases, run_check
):
    from tenants import placements, servers
    from tenants.models import Placement

    def stray() -> dict[str, dict]:
        return {p["schema"]: p for p in run_check("stray_data").evidence["problems"]}

    ours = {t.placement.schema_name for pair in tenant_world.values() for t in pair if t.placement.kind != "database"}
    assert not ours & set(stray())  # a placement's schema is never stray
    with placements.owner_connect(autocommit=True) as conn:  # as an import's source would be: the owner's
        conn.execute("CREATE SCHEMA dt_leftover")
        conn.execute("CREATE TABLE dt_leftover.member (id int, email text)")
        conn.execute("INSERT INTO dt_leftover.member SELECT g, 'p' || g || '@x.test' FROM generate_series(1, 50) g")
        conn.execute("ANALYZE dt_leftover.member")
        conn.execute("CREATE SCHEMA t_orphaned")
        conn.execute("CREATE TABLE t_orphaned.account (id int)")
    try:
        placement = Placement.objects.create(
            kind=Placement.Kind.SCHEMA, schema_name="t_orphaned", **servers.location_fields(servers.server_default())
        )
        outcome = run_check("stray_data")
        found = {p["schema"]: p for p in outcome.evidence["problems"]}
        assert outcome.status == "fail" and "schemas hold data outside every placement" in outcome.summary
        leftover = found["dt_leftover"]
        assert (leftover["database"], leftover["tables"], leftover["rows_estimate"]) == ("control plane", 1, 50)
        assert leftover["app_role_reads"]  # the owner's default privileges grant the app role SELECT
        assert "t_orphaned" not in found
        placement.delete()
        assert "t_orphaned" in stray()  # its placement row is gone, its data is not
    finally:
        with placements.owner_connect(autocommit=True) as conn:
            conn.execute("DROP SCHEMA dt_leftover CASCADE")
            conn.execute("DROP SCHEMA t_orphaned CASCADE")
    assert not {"dt_leftover", "t_orphaned"} & set(stray())


def test_the_tenant_page_shows_only_the_problems_of_its_own_placement(
    tenant_world, allow_tenant_aliases, client_for, viewer, operator
):
    from compliance import library, services
    from compliance.models import Evaluation
    from core.actors import SystemActor
    from jobs.services import job_execute

    library.library_load(actor=SystemActor("tests"))
    broken, other = tenant_world["schema"]
    table = sql.SQL("{}.workspace_member").format(sql.Identifier(broken.placement.schema_name))
    with superuser() as conn:
        conn.execute(sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(table))
    try:
        job = services.evaluation_start(actor=operator, control_keys=["tenant-isolation-rls"])
        job_execute(job_id=job.pk, heartbeat=False)
    finally:
        with superuser() as conn:
            conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(table))
    assert Evaluation.objects.get(job=job).results.get().status == "fail"
    client = client_for(viewer)
    page = client.get(f"/compliance/tenants/{broken.pk}/").content.decode()
    assert "workspace_member: RLS not forced" in page
    page = client.get(f"/compliance/tenants/{other.pk}/").content.decode()
    assert "RLS not forced" not in page and "Nothing concerning this tenant." in page
    assert client.get("/compliance/tenants/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client_for(None).get(f"/compliance/tenants/{broken.pk}/").status_code == 302
