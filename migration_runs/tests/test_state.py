"""The control plane's record of each placement's migrations (tenants.MigrationState): written by
provisioning, re-read and reconciled by the verification job, and what the Migrations screen and API
read instead of opening tenant databases."""

from __future__ import annotations

import psycopg
import pytest
from django.utils import timezone
from psycopg import sql

from audit.models import AuditEntry
from events.models import Event
from jobs import services as engine
from jobs.models import Job
from migration_runs import plans, verification
from tenants import migration_state, placements
from tenants.models import MigrationState, Placement

pytestmark = pytest.mark.django_db(databases="__all__")
LIST = "/migrations/"


def _real(placement_id: int) -> plans.TargetStatus:
    return plans.status(plans.targets(keys=[f"placement:{placement_id}"], include_templates=False))[0]


def _verify(actor) -> Job:
    job = verification.verification_start(actor=actor)
    assert engine.job_execute(job_id=job.pk, heartbeat=False) == "succeeded"
    job.refresh_from_db()
    return job


def test_provisioning_records_what_each_new_placement_has_applied(tenant_world):
    for isolation, (tenant, _) in tenant_world.items():
        recorded = MigrationState.objects.get(placement_id=tenant.placement_id)
        real = _real(tenant.placement_id)
        assert recorded.applied == sorted(plans.fmt(k) for k in real.applied), isolation
        assert not recorded.missing and not recorded.drift and recorded.kind == tenant.placement.kind


def test_the_screen_shows_every_placement_without_opening_a_tenant_database(
    client_for, viewer, tenant_world, monkeypatch
):
    dedicated = tenant_world["dedicated"][0].placement
    opened: list[str] = []
    connect = psycopg.connect

    def spy(*args, **kwargs):
        opened.append(str(kwargs.get("dbname", "")))
        return connect(*args, **kwargs)

    monkeypatch.setattr(psycopg, "connect", spy)
    response = client_for(viewer).get(LIST, {"kind": "database"})
    assert response.status_code == 200
    assert dedicated.db_name in response.content.decode()
    assert dedicated.db_name not in opened
    assert not any(name.startswith(placements.dedicated_database_name("")) for name in opened)


def test_verification_records_placements_nobody_recorded_and_flags_a_change_made_by_hand(
    make_tenant, operator, client_for
):
    tenant = make_tenant("schema", seed=False)
    MigrationState.objects.filter(placement_id=tenant.placement_id).delete()  # e.g. from before the record existed

    job = _verify(operator)
    recorded = MigrationState.objects.get(placement_id=tenant.placement_id)
    assert job.result["recorded"] >= 1 and not recorded.drift and recorded.verified_at is not None

    # Someone deletes a migration record in the placement behind the control plane's back.
    latest = sorted(recorded.applied)[-1]
    app, name = plans.parse(latest)
    schema = sql.Identifier(tenant.placement.schema_name)
    with placements.owner_connect(autocommit=True) as conn:
        conn.execute(
            sql.SQL("DELETE FROM {}.django_migrations WHERE app = %s AND name = %s").format(schema), [app, name]
        )
    try:
        job = _verify(operator)
    finally:
        with placements.owner_connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("INSERT INTO {}.django_migrations (app, name, applied) VALUES (%s, %s, now())").format(schema),
                [app, name],
            )
    recorded.refresh_from_db()
    assert job.result["drifted"] == 1
    assert f"no longer applied: {latest}" in recorded.drift and latest not in recorded.applied
    event = Event.objects.get(aggregate_type="placement", aggregate_id=str(tenant.placement_id),
                              event_type="MigrationStateDrifted")  # fmt: skip
    assert latest in event.event_data["drift"]

    page = client_for(operator).get(LIST, {"state": "drift"}).content.decode()
    assert tenant.placement.schema_name in page and "drift" in page


def test_a_record_written_after_the_verification_read_the_placement_is_not_drift(tenant_world):
    tenant = tenant_world["schema"][0]
    read_started = timezone.now()
    statuses = [_real(tenant.placement_id)]
    # A migration run records the placement after the verification read it (and applied one more).
    location = migration_state.placement_location(tenant.placement)
    newer = [plans.fmt(k) for k in statuses[0].applied] + ["workspace.9999_applied_meanwhile"]
    migration_state.state_record(location, newer)

    counts = verification.reconcile(statuses, read_started=read_started)
    recorded = MigrationState.objects.get(placement_id=tenant.placement_id)
    assert counts["drifted"] == 0 and not recorded.drift
    assert "workspace.9999_applied_meanwhile" in recorded.applied


def test_an_unreachable_placement_keeps_its_record_and_says_why(operator, client_for):
    ghost = Placement.objects.create(kind="database", database_alias="tdb_ghost", schema_name="public",
                                     db_name="ghost_database_that_is_not_there", capacity=1)  # fmt: skip
    location = migration_state.placement_location(ghost)
    migration_state.state_record(location, ["workspace.0001_initial"])

    job = _verify(operator)
    recorded = MigrationState.objects.get(placement_id=ghost.pk)
    assert job.result["unreachable"] >= 1
    assert recorded.error and recorded.applied == ["workspace.0001_initial"]
    page = client_for(operator).get(LIST, {"state": "error"}).content.decode()
    assert "ghost_database_that_is_not_there" in page and "unreachable" in page


def test_a_placement_without_a_record_is_listed_as_not_recorded_yet(viewer, client_for):
    fake = Placement.objects.create(kind="pool", schema_name="never_recorded_pool", capacity=10)
    page = client_for(viewer).get(LIST, {"state": "unrecorded"}).content.decode()
    assert fake.schema_name in page and "not recorded yet" in page
    rows = client_for(viewer).get("/api/migrations/status", {"limit": 1000}).json()
    assert any(row["label"] == fake.schema_name and row["recorded"] is False for row in rows)


# --- starting a verification: who may, and only one at a time --------------------------------------


def test_viewers_cannot_start_a_verification(client_for, viewer):
    assert client_for(viewer).post("/migrations/verify/").status_code == 403
    assert not Job.objects.filter(kind=verification.VERIFY).exists()


def test_an_operator_starts_one_verification_and_a_second_is_refused_while_it_runs(client_for, operator):
    client = client_for(operator)
    response = client.post("/migrations/verify/", follow=True)
    assert response.status_code == 200 and "Verification started" in response.content.decode()
    assert Job.objects.filter(kind=verification.VERIFY).count() == 1
    assert AuditEntry.objects.filter(action="migration_state.verify", actor=operator).exists()

    again = client.post("/migrations/verify/", follow=True).content.decode()
    assert "already running" in again
    assert Job.objects.filter(kind=verification.VERIFY).count() == 1


def test_the_schedule_never_starts_a_second_verification(operator):
    first = verification.verification_start(actor=operator)
    assert verification.verification_start(actor=verification.SCHEDULE).pk == first.pk


# --- the API pages through the record ---------------------------------------------------------------


@pytest.mark.parametrize("query", [{"offset": -5, "limit": 99_999_999}, {"offset": 10**12, "limit": -1}, {"limit": 0}])
def test_the_status_api_clamps_its_paging_instead_of_failing(api_client_for, viewer, query):
    response = api_client_for(viewer).get("/api/migrations/status", query)
    assert response.status_code == 200 and isinstance(response.json(), list)


def test_the_status_api_refuses_a_non_number_in_one_sentence(api_client_for, viewer):
    response = api_client_for(viewer).get("/api/migrations/status", {"offset": "ten"})
    assert response.status_code in (400, 422)
    assert response.json()["detail"].endswith(".")
