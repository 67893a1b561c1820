"""Cross-tenant migration runs end to end: a real Celery worker subprocess on a private broker,
tenants of all three isolation levels, and a throwaway `workspace` migration that exists only in a
temporary directory (see tests/support/migrations.py) — nothing is left in the tree.

Transactional tests name the owner alias too (the worker must see committed rows; the flush
after each test goes through the owner)."""

from __future__ import annotations

import psycopg
import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

from core import dbroles
from events.models import Event
from jobs import services as engine
from jobs.models import Job
from jobs.services import job_claim, job_sweep, jobs_work_inline
from migration_runs import plans, services
from migration_runs.models import MigrationJob, MigrationRun
from tenants import placements
from tenants.context import tenant_context
from tenants.models import MigrationState
from tests.support.migrations import (
    CONSTRAINT,
    MIGRATION_NAME,
    ThrowawayMigration,
    Worker,
    drop_placements,
    wait_for,
)
from tests.support.tenancy import provision
from workspace.models import Member

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=["default", "owner"])]
# Dedicated tenant databases get connection aliases at runtime (tenants/databases.py); Django's test
# case only allows aliases listed up front, so these tests use the unpatched method (they drop what
# they create themselves).


class Env:
    def __init__(self) -> None:
        self.migration: ThrowawayMigration | None = None
        self.worker: Worker | None = None
        self.settings = None

    def tenants(self, *isolations: str):
        """Provision tenants with the real migrations only, before the throwaway one appears."""
        placements.template_schema_ensure()
        placements.template_database_ensure()
        # A crashed earlier session may have left the throwaway migration in a template.
        leftovers = plans.applied_bulk(plans.targets(keys=[plans.TEMPLATE_SCHEMA, plans.TEMPLATE_DATABASE]))
        if any(isinstance(a, set) and ("workspace", MIGRATION_NAME) in a for a in leftovers.values()):
            placements.templates_rebuild()
        return [provision(iso, f"mig-{iso[:3]}-{i}", name=f"Tenant {i}") for i, iso in enumerate(isolations)]

    def add_migration(self) -> ThrowawayMigration:
        self.migration = ThrowawayMigration()
        self.migration.enable(self.settings)
        return self.migration

    def start_worker(self, **env: str) -> Worker:
        assert self.migration is not None
        if self.worker is None:
            self.worker = Worker(self.migration.worker_env())
        return self.worker.start(**env)


@pytest.fixture(scope="module", autouse=True)
def _drop_template_database_afterwards(django_db_setup, django_db_blocker):
    """The runs here rebuild the template database; leave no `<test db>_tenant_tpl` behind."""
    yield
    with django_db_blocker.unblock():
        from tenants.databases import unregister_alias

        unregister_alias(placements.TEMPLATE_ALIAS)
        if placements.database_exists(placements.template_database()):
            dbroles.drop_database(placements.template_database())


@pytest.fixture
def env(transactional_db, django_db_blocker, settings, monkeypatch):
    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", django_db_blocker._real_ensure_connection)
    settings.MIGRATIONS_JOB_LEASE_SECONDS = 1.5
    settings.MIGRATIONS_MAX_PER_SERVER = 2
    e = Env()
    e.settings = settings
    yield e
    if e.worker is not None:
        e.worker.stop()
    if e.migration is not None:
        # Take the throwaway migration back out of the control plane, then forget it and
        # rebuild both templates from the real migrations.
        applied = plans.status(plans.targets(keys=[plans.CONTROL]))[0].applied
        if e.migration.key in applied:
            call_command("migrate", "workspace", e.migration.leaf, database="owner", verbosity=0)
        drop_placements()
        e.migration.disable()
        e.migration.remove()
        placements.templates_rebuild()
    else:
        drop_placements()


@pytest.fixture
def platform_admin(transactional_db, django_user_model):
    """Ada, an Admin. Transactional tests flush the groups the data migration made, so recreate hers."""
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username="ada_admin", password="a-long-test-password-1", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="Admin")[0])
    return user


def _wait_finished(run: MigrationRun, worker: Worker) -> MigrationRun:
    def finished():
        run.refresh_from_db()
        return run.is_finished

    wait_for(finished, timeout=120, worker=worker)
    return run


def _has_constraint(target: plans.Target) -> bool:
    with psycopg.connect(**plans.target_conninfo(target), autocommit=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE c.conname = %s AND n.nspname = %s",
            [CONSTRAINT, target.schema],
        ).fetchone()
    return row is not None


def test_a_new_migration_is_pending_everywhere_and_one_run_applies_it_at_every_isolation_level(env, platform_admin):
    shared, own_schema, dedicated = env.tenants("shared", "schema", "dedicated")
    migration = env.add_migration()

    before = {st.target.key: st for st in plans.status()}
    kinds = {st.target.kind for st in before.values() if migration.key in st.pending}
    assert kinds == {"control", "template_schema", "template_database", "pool", "schema", "database"}

    env.start_worker()
    run = services.run_start(actor=platform_admin)
    _wait_finished(run, env.worker)

    assert run.status == MigrationRun.Status.COMPLETED, env.worker.logs()
    jobs = {job.kind: job for job in run.jobs.all()}
    assert {job.status for job in jobs.values()} == {MigrationJob.Status.SUCCEEDED}
    assert all(job.duration_ms is not None and job.attempts == 1 for job in jobs.values())
    assert jobs["database"].applied == [plans.fmt(migration.key)]
    # The control plane recorded what each placement applied, so the screen needs no tenant database.
    for tenant in (shared, own_schema, dedicated):
        recorded = MigrationState.objects.get(placement_id=tenant.placement_id)
        assert plans.fmt(migration.key) in recorded.applied and not recorded.drift
    after = plans.status()
    assert all(not st.pending for st in after), [(st.target.label, st.pending) for st in after if st.pending]
    assert all(_has_constraint(st.target) for st in after)

    # The data plane still works through the app role after the run.
    with tenant_context(own_schema) as alias:
        Member.objects.using(alias).create(name="Ada", email="ada@example.test")
        assert Member.objects.using(alias).count() == 1

    # Change-management evidence: who triggered it, every job, the outcome.
    events = Event.objects.filter(correlation_id=run.pk).values_list("event_type", flat=True)
    assert {"MigrationRunRequested", "MigrationRunStarted", "MigrationJobSucceeded", "MigrationRunFinished"} <= set(
        events
    )
    requested = Event.objects.get(aggregate_id=str(run.pk), event_type="MigrationRunRequested")
    assert requested.event_data["triggered_by"] == platform_admin.get_username()

    # The run kept the templates current: a tenant provisioned now needs nothing.
    newcomer = provision("schema", "mig-late", name="Late")
    status = plans.status(plans.targets(keys=[f"placement:{newcomer.placement_id}"]))[0]
    assert status.pending == [] and migration.key in status.applied
    assert plans.fmt(migration.key) in MigrationState.objects.get(placement_id=newcomer.placement_id).applied

    # A second run finds nothing to apply and opens no executor: every job is skipped at planning.
    again = services.run_start(actor=platform_admin)
    again.refresh_from_db()
    assert again.status == MigrationRun.Status.COMPLETED
    assert set(again.jobs.values_list("state", flat=True)) == {MigrationJob.Status.SKIPPED}
    assert not again.jobs.filter(started_at__isnull=False).exists()
    assert not again.jobs.filter(job__isnull=False).exists()


def test_one_placement_violating_the_migration_fails_alone_and_a_fixed_rerun_completes(env, platform_admin):
    good_schema, bad_db, good_pool = env.tenants("schema", "dedicated", "shared")
    with tenant_context(bad_db) as alias:
        Member.objects.using(alias).create(name="forbidden", email="f@example.test")
    env.add_migration()
    env.start_worker()

    run = services.run_start(actor=platform_admin)
    _wait_finished(run, env.worker)

    assert run.status == MigrationRun.Status.COMPLETED_WITH_ERRORS
    failed = run.jobs.get(state=MigrationJob.Status.FAILED)
    assert failed.placement_id == bad_db.placement_id
    assert CONSTRAINT in failed.error and "violated" in failed.error
    assert run.jobs.filter(state=MigrationJob.Status.SUCCEEDED).count() == run.jobs.count() - 1
    failure_event = Event.objects.get(correlation_id=run.pk, event_type="MigrationJobFailed")
    assert CONSTRAINT in failure_event.event_data["error"]

    with tenant_context(bad_db) as alias:
        Member.objects.using(alias).filter(name="forbidden").update(name="allowed now")
    rerun = services.run_resume(actor=platform_admin, run=run)
    _wait_finished(rerun, env.worker)

    assert rerun.status == MigrationRun.Status.COMPLETED
    assert rerun.resumed_from_id == run.pk
    assert list(rerun.jobs.values_list("target", flat=True)) == [f"placement:{bad_db.placement_id}"]
    assert all(not st.pending for st in plans.status())


def test_a_killed_worker_does_not_leave_a_placement_running_forever(env, platform_admin):
    (own_schema,) = env.tenants("schema")
    env.add_migration()
    key = f"placement:{own_schema.placement_id}"
    env.start_worker(MIGTEST_SLEEP="30")  # the migration holds its transaction open for a while

    run = services.run_start(actor=platform_admin, target_keys=[key])
    job = run.jobs.get()
    # The placement itself is under way (not only its job claimed): the kill lands mid-migration.
    wait_for(
        lambda: MigrationJob.objects.filter(pk=job.pk, state="running", job__state="running").exists(),
        worker=env.worker,
    )
    env.worker.kill()

    # Nobody renews the lease any more; the sweeper (beat runs it every 15 s) hands the job back.
    wait_for(lambda: job_sweep()["retried"] == 1, timeout=20)
    job.refresh_from_db()
    assert job.status in ("pending", "queued") and "stopped responding" in job.error
    _terminate_backends_of_dead_worker()

    env.start_worker(MIGTEST_SLEEP="0")
    _wait_finished(run, env.worker)
    job.refresh_from_db()
    assert run.status == MigrationRun.Status.COMPLETED, env.worker.logs()
    assert job.status == MigrationJob.Status.SUCCEEDED and job.attempts == 2
    assert Event.objects.filter(correlation_id=run.pk, event_type="MigrationJobWorkerLost").count() == 1
    assert not plans.status(plans.targets(keys=[key]))[0].pending


def _terminate_backends_of_dead_worker() -> None:
    """A SIGKILLed client's backend keeps sleeping until pg_sleep returns; end it like a DBA would."""
    with placements.owner_connect(autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep%%' AND pid <> pg_backend_pid()"
            )
        )


# --- several placements per job ------------------------------------------------------------------


def test_one_job_migrates_several_placements_and_a_failing_one_fails_alone(env, platform_admin):
    env.settings.MIGRATIONS_MAX_PER_SERVER = 1  # one server, one slot: every placement rides in one job
    env.settings.MIGRATIONS_PLACEMENTS_PER_JOB = 25
    good_a, bad, good_b = env.tenants("schema", "schema", "schema")
    with tenant_context(bad) as alias:
        Member.objects.using(alias).create(name="forbidden", email="f@example.test")
    migration = env.add_migration()
    keys = [f"placement:{t.placement_id}" for t in (good_a, bad, good_b)]

    run = services.run_start(actor=platform_admin, target_keys=keys)
    assert run.jobs.values("job_id").distinct().count() == 1
    jobs_work_inline(group=(services.GROUP, run.pk))

    run.refresh_from_db()
    assert run.status == MigrationRun.Status.COMPLETED_WITH_ERRORS
    outcome = {m.placement_id: m for m in run.jobs.all()}
    assert outcome[bad.placement_id].state == MigrationJob.Status.FAILED
    assert CONSTRAINT in outcome[bad.placement_id].error
    for tenant in (good_a, good_b):  # the one after the failure still ran
        assert outcome[tenant.placement_id].state == MigrationJob.Status.SUCCEEDED
        assert plans.fmt(migration.key) in MigrationState.objects.get(placement_id=tenant.placement_id).applied
    assert plans.fmt(migration.key) not in MigrationState.objects.get(placement_id=bad.placement_id).applied
    carrier = run.jobs.first().job
    assert carrier.state == "failed" and carrier.error.startswith("1 of 3 placements failed")


def test_a_worker_killed_between_two_placements_of_one_job_leaves_none_half_done(
    env, platform_admin, django_user_model
):
    """The first placement's migration committed, then the worker died before recording it: the next
    attempt records it as applied by this run and migrates the second."""
    env.settings.MIGRATIONS_MAX_PER_SERVER = 1
    env.settings.MIGRATIONS_PLACEMENTS_PER_JOB = 25
    env.settings.MIGRATIONS_REQUIRE_APPROVAL = True  # held until the fault is armed and the worker listens
    first, second = env.tenants("schema", "dedicated")
    migration = env.add_migration()
    keys = [f"placement:{t.placement_id}" for t in (first, second)]
    run = services.run_start(actor=platform_admin, target_keys=keys)
    Job.objects.filter(group_id=str(run.pk)).update(payload={"_fault": {"point": "target_migrated", "mode": "kill"}})
    env.start_worker(JOBS_FAULT_INJECTION="1")
    approver = django_user_model.objects.create_user(
        username="bo_admin", password="a-long-test-password-2", is_staff=True
    )
    approver.groups.add(Group.objects.get(name="Admin"))
    services.run_approve(actor=approver, run=run)

    wait_for(lambda: job_sweep()["retried"] == 1, timeout=30, worker=env.worker)  # the lease ran out
    _wait_finished(run, env.worker)

    assert run.status == MigrationRun.Status.COMPLETED, env.worker.logs()
    rows = {m.placement_id: m for m in run.jobs.select_related("job")}
    assert {m.state for m in rows.values()} == {MigrationJob.Status.SUCCEEDED}
    assert all(m.attempts == 2 for m in rows.values())
    assert rows[first.placement_id].applied == [plans.fmt(migration.key)]  # applied by the dead attempt
    assert Event.objects.filter(correlation_id=run.pk, event_type="MigrationJobWorkerLost").count() == 1
    for tenant in (first, second):
        assert plans.fmt(migration.key) in MigrationState.objects.get(placement_id=tenant.placement_id).applied
    assert not any(st.pending for st in plans.status(plans.targets(keys=keys)))


def test_cancelling_a_run_stops_a_running_job_before_its_next_placement(env, platform_admin):
    env.settings.MIGRATIONS_MAX_PER_SERVER = 1
    env.settings.MIGRATIONS_PLACEMENTS_PER_JOB = 25
    a, b = env.tenants("schema", "schema")
    env.add_migration()
    run = services.run_start(actor=platform_admin, target_keys=[f"placement:{t.placement_id}" for t in (a, b)])
    carrier = run.jobs.first().job
    claimed = job_claim(job_id=carrier.pk)
    assert isinstance(claimed, tuple)  # the job is running when the operator cancels
    services.run_cancel(actor=platform_admin, run=run)
    engine._run_claimed(*claimed, heartbeat=False)

    run.refresh_from_db()
    assert run.status == MigrationRun.Status.CANCELLED
    assert set(run.jobs.values_list("state", flat=True)) == {MigrationJob.Status.CANCELLED}
    assert plans.status(plans.targets(keys=[f"placement:{a.placement_id}"]))[0].pending  # nothing was migrated


def test_placements_are_migrated_on_the_quick_path_though_a_control_plane_app_ships_a_squash(env):
    """The per-placement applier (migration_runs/executor.py) reuses one migration graph and project
    state per worker; Django's full executor rebuilds both for every placement (about 4x the time per
    placement). django-otp-webauthn's squashed migration, a control-plane app's, once sent every
    placement to the full executor: `after` is None when that happened."""
    from migration_runs import executor

    tenants = env.tenants("shared", "schema", "dedicated")
    migration = env.add_migration()
    _, loader = executor._loader()
    assert loader.replacements, "the project ships a squashed migration outside TENANT_APPS (the case tested here)"
    for tenant in tenants:
        tenant.placement.refresh_from_db()
        outcome = executor.apply_pending(tenant.placement)
        assert outcome.now == [migration.key] and outcome.after is not None, tenant.placement
        assert migration.key in outcome.after
        status = plans.status(plans.targets(keys=[f"placement:{tenant.placement_id}"]))[0]
        assert status.pending == [] and migration.key in status.applied
        assert _has_constraint(status.target)
        again = executor.apply_pending(tenant.placement)
        assert again.now == [] and again.after is not None


def test_a_run_gives_placements_made_before_it_the_move_copys_trusted_chain_function(env):
    """tenantlog 0003 replaces the tenant log's insert function in every existing placement (a pool
    it has not reached chains a move's events itself: correct, only slower), and back when unapplied."""
    from migration_runs import executor
    from tests.support.migrations import unapply_latest

    def function_body(tenant) -> str:
        (target,) = plans.targets(keys=[f"placement:{tenant.placement_id}"])
        with psycopg.connect(**plans.target_conninfo(target), autocommit=True) as conn:
            row = conn.execute(
                "SELECT pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = %s AND p.proname = 'tenantlog_event_before_insert'",
                [target.schema],
            ).fetchone()
        assert row is not None, "the placement has no tenant log insert function"
        return row[0]

    for tenant in env.tenants("shared", "dedicated"):
        tenant.placement.refresh_from_db()
        assert "events.copy_trusted_chain" in function_body(tenant)
        key = unapply_latest(tenant.placement, "tenantlog")
        assert key == ("tenantlog", "0003_trusted_chain_copy")
        before = function_body(tenant)
        assert "events.copy_trusted_chain" not in before and "prev_hash_v" in before
        outcome = executor.apply_pending(tenant.placement)
        assert outcome.now == [key] and outcome.after is not None
        assert "events.copy_trusted_chain" in function_body(tenant)
