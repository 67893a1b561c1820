"""Cross-tenant migration runs in-process: planning, fan-out rules (cap, canary, cancel, four-eyes),
claims and the sweeper, screens, API, command and permissions. The real-worker flows are in
test_migration_runs_worker.py.

Placement rows here may point at schemas that do not exist: to the status reader such a
placement simply has every migration pending, which is all the dispatch rules need."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from core.permissions import Role
from events.models import Event
from jobs import services as jobs
from jobs.models import Job
from migration_runs import plans, services
from migration_runs.models import MigrationJob, MigrationRun
from tenants.models import Placement
from tests.support.migrations import MIGRATION_NAME, ThrowawayMigration

pytestmark = pytest.mark.django_db(databases=["default", "owner"])  # the live status read uses the owner connection

LIST = "/migrations/"


@pytest.fixture
def sent(monkeypatch):
    """Ids of the migration jobs whose engine job was handed to Celery (captured, not sent; the test's
    transaction never commits, so the engine's on-commit sends are recorded right away, in order)."""
    job_ids: list[int] = []
    monkeypatch.setattr(jobs, "_send", lambda job_id, countdown=0: job_ids.append(job_id))
    return SentMigrationJobs(job_ids)


class SentMigrationJobs(list):
    """Reads as the list of MigrationJob ids sent so far (the engine sends engine job ids)."""

    def __init__(self, job_ids: list[int]) -> None:
        super().__init__()
        self.job_ids = job_ids

    def _ids(self) -> list[int]:
        by_job = dict(MigrationJob.objects.filter(job_id__in=self.job_ids).values_list("job_id", "pk"))
        return [by_job[j] for j in self.job_ids if j in by_job]

    def __len__(self) -> int:
        return len(self._ids())

    def __iter__(self):
        return iter(self._ids())

    def __getitem__(self, index):
        return self._ids()[index]

    def __eq__(self, other) -> bool:
        return self._ids() == list(other)

    def __contains__(self, item) -> bool:
        return item in self._ids()


def _set_state(mjobs, state: str, **fields) -> None:
    """Stand in for a worker: put these targets and their engine jobs in `state`."""
    mjobs = list(mjobs)
    Job.objects.filter(pk__in=[j.job_id for j in mjobs if j.job_id]).update(state=state, **fields)
    MigrationJob.objects.filter(pk__in=[j.pk for j in mjobs]).update(state=state, **fields)


@pytest.fixture(autouse=True)
def one_placement_per_job(settings):
    """The fan-out rules below are about jobs; with one placement per job a job is a target.
    (Several placements per job: test_chunks.py.)"""
    settings.MIGRATIONS_PLACEMENTS_PER_JOB = 1


@pytest.fixture
def new_migration(settings):
    migration = ThrowawayMigration()
    migration.enable(settings)
    yield migration
    migration.disable()
    migration.remove()


def _fake_pools(n: int) -> list[Placement]:
    return [Placement.objects.create(kind="pool", schema_name=f"nowhere_{i}", capacity=10) for i in range(n)]


# --- status from the migration graph --------------------------------------------------


def test_a_new_tenant_app_migration_shows_up_as_pending_in_the_control_plane_and_every_placement(new_migration):
    pool = _fake_pools(1)[0]
    status = {st.target.key: st for st in plans.status()}
    assert new_migration.key in status[plans.CONTROL].pending
    assert new_migration.key in status[f"placement:{pool.pk}"].pending
    assert status[plans.CONTROL].pending[-1] == new_migration.key  # in the executor's order


def test_the_control_plane_is_up_to_date_without_the_new_migration():
    control = plans.status(plans.targets(keys=[plans.CONTROL]))[0]
    assert control.pending == [] and not control.error
    assert ("workspace", "0001_initial") in control.applied


# --- starting runs -----------------------------------------------------------------------


def test_a_run_with_nothing_to_apply_completes_at_once_and_sends_no_job(platform_admin, sent):
    run = services.run_start(actor=platform_admin, target_keys=[plans.CONTROL])
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.COMPLETED
    assert list(run.jobs.values_list("state", flat=True)) == ["skipped"]
    assert not Job.objects.filter(group_id=str(run.pk)).exists()  # nothing to apply: no job at all
    assert sent == []


def test_the_fan_out_keeps_to_the_cap_per_database_server(platform_admin, sent, settings, new_migration):
    settings.MIGRATIONS_MAX_PER_SERVER = 2
    _fake_pools(5)
    run = services.run_start(actor=platform_admin)
    assert len(sent) == 2
    assert run.jobs.filter(job__state="queued").count() == 2
    assert run.jobs.filter(job__state="pending").count() >= 4

    # A job finishing frees a slot and the next one is queued.
    first = MigrationJob.objects.get(pk=sent[0])
    job, attempt = jobs.job_claim(job_id=first.job_id)
    jobs._record_success(job, attempt, {"applied": []}, 1, {})
    assert len(sent) == 3


def test_a_failed_canary_stops_the_rest(platform_admin, sent, settings, new_migration):
    settings.MIGRATIONS_MAX_PER_SERVER = 50
    _fake_pools(4)
    # Pools opened earlier in the session stay as spare capacity; the canary is the first placement by id.
    first = Placement.objects.order_by("id").first()
    run = services.run_start(actor=platform_admin, canary_size=1)
    canary = run.jobs.filter(batch=0)
    assert set(canary.values_list("target", flat=True)) == {plans.CONTROL, f"placement:{first.pk}"}
    assert sorted(sent) == sorted(canary.values_list("id", flat=True))
    assert run.jobs.filter(batch=1, job__state="queued").count() == 0  # the rest waits for the canary

    for mjob in canary.order_by("target"):  # control first, then the failing placement
        job, attempt = jobs.job_claim(job_id=mjob.job_id)
        if mjob.target == plans.CONTROL:
            jobs._record_success(job, attempt, {"applied": []}, 1, {})
        else:
            jobs._record_failure(job, attempt, RuntimeError("boom"), 1, {})
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.COMPLETED_WITH_ERRORS
    assert run.jobs.filter(batch=1, job__state="pending").count() >= 3
    finished = Event.objects.get(aggregate_id=str(run.pk), event_type="MigrationRunFinished")
    assert "canary batch failed" in finished.event_data["stopped"]


def test_a_passing_canary_releases_the_rest(platform_admin, sent, settings, new_migration):
    settings.MIGRATIONS_MAX_PER_SERVER = 50
    _fake_pools(3)
    run = services.run_start(actor=platform_admin, canary_size=1)
    for mjob in run.jobs.filter(batch=0):
        job, attempt = jobs.job_claim(job_id=mjob.job_id)
        jobs._record_success(job, attempt, {"applied": []}, 1, {})
    assert (
        run.jobs.filter(batch=1, job__state="queued").count()
        == run.jobs.filter(batch=1).exclude(state="skipped").count()
    )


def test_cancelling_stops_new_jobs_and_lets_running_ones_finish(platform_admin, sent, settings, new_migration):
    settings.MIGRATIONS_MAX_PER_SERVER = 1
    _fake_pools(3)
    run = services.run_start(actor=platform_admin)
    running = MigrationJob.objects.get(pk=sent[0])
    job, attempt = jobs.job_claim(job_id=running.job_id)

    services.run_cancel(actor=platform_admin, run=run)
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.RUNNING and run.cancel_requested
    assert run.jobs.filter(job__state="pending").count() == 0
    assert run.jobs.filter(job__state="running").count() == 1

    jobs._record_success(job, attempt, {"applied": []}, 1, {})
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.CANCELLED
    assert len(sent) == 1


def test_a_rerun_covers_only_what_failed_or_never_ran(platform_admin, sent, new_migration):
    pools = _fake_pools(3)
    run = services.run_start(actor=platform_admin)
    _set_state(run.jobs.filter(target=f"placement:{pools[0].pk}"), "failed", error="x")
    _set_state(run.jobs.filter(target=f"placement:{pools[1].pk}"), "cancelled")
    _set_state(run.jobs.exclude(target__in=[f"placement:{pools[0].pk}", f"placement:{pools[1].pk}"]), "succeeded")
    services.run_finalize_if_done(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.COMPLETED_WITH_ERRORS

    rerun = services.run_resume(actor=platform_admin, run=run)
    assert set(rerun.jobs.values_list("target", flat=True)) == {f"placement:{pools[0].pk}", f"placement:{pools[1].pk}"}
    assert rerun.resumed_from == run and rerun.scope == "resume"


def test_a_running_run_cannot_be_resumed(platform_admin, sent, new_migration):
    _fake_pools(1)
    run = services.run_start(actor=platform_admin)
    with pytest.raises(services.MigrationRunError, match="still going"):
        services.run_resume(actor=platform_admin, run=run)


def test_unknown_placements_are_refused_in_one_sentence(platform_admin, sent):
    with pytest.raises(services.MigrationRunError, match="Unknown placement: placement:999999."):
        services.run_start(actor=platform_admin, target_keys=["placement:999999"])
    assert not MigrationRun.objects.exists()


def test_every_start_is_evidence_in_the_event_log_and_the_audit_trail(platform_admin, sent, new_migration):
    run = services.run_start(actor=platform_admin, target_keys=[plans.CONTROL], note="ticket CHG-42")
    requested = Event.objects.get(
        aggregate_type="migration_run", aggregate_id=str(run.pk), event_type="MigrationRunRequested"
    )
    assert requested.event_data["triggered_by"] == "ada_admin"
    assert requested.event_data["plan"] == {f"workspace.{MIGRATION_NAME}": 1}
    assert requested.event_data["approval_required"] is False
    assert AuditEntry.objects.filter(action="migration_run.start", target_id=str(run.pk), actor=platform_admin).exists()


# --- four-eyes ------------------------------------------------------------------------------


def test_with_four_eyes_a_second_admin_must_approve_before_anything_runs(
    platform_admin, make_operator, sent, settings, new_migration
):
    settings.MIGRATIONS_REQUIRE_APPROVAL = True
    second = make_operator(Role.ADMIN, "bo_admin")
    run = services.run_start(actor=platform_admin, target_keys=[plans.CONTROL])
    assert run.status == MigrationRun.Status.AWAITING_APPROVAL and sent == []

    with pytest.raises(services.MigrationRunError, match="second Admin"):
        services.run_approve(actor=platform_admin, run=run)
    services.run_approve(actor=second, run=run)
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.RUNNING and run.approved_by == second
    assert len(sent) == 1
    approved = Event.objects.get(aggregate_id=str(run.pk), event_type="MigrationRunApproved")
    assert approved.event_data["approved_by"] == "bo_admin"


def test_a_rejected_run_never_starts(platform_admin, make_operator, sent, settings, new_migration):
    settings.MIGRATIONS_REQUIRE_APPROVAL = True
    run = services.run_start(actor=platform_admin, target_keys=[plans.CONTROL])
    services.run_reject(actor=make_operator(Role.ADMIN, "bo_admin"), run=run)
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.REJECTED
    assert set(run.jobs.values_list("state", flat=True)) == {"cancelled"}
    assert set(run.jobs.values_list("job__state", flat=True)) == {"cancelled"}
    assert sent == []


def test_cancelling_a_proposed_run_ends_it(platform_admin, sent, settings, new_migration):
    settings.MIGRATIONS_REQUIRE_APPROVAL = True
    run = services.run_start(actor=platform_admin, target_keys=[plans.CONTROL])
    services.run_cancel(actor=platform_admin, run=run)
    run.refresh_from_db()
    assert run.status == MigrationRun.Status.CANCELLED and run.finished_at is not None
    assert sent == []


# --- claims, redelivery and the sweeper -------------------------------------------------------


def _queued_job(admin):
    _fake_pools(1)
    run = services.run_start(actor=admin)
    return run.jobs.select_related("job").filter(job__state="queued").first()


def _claim(mjob):
    claimed = jobs.job_claim(job_id=mjob.job_id)
    return claimed[1] if isinstance(claimed, tuple) else claimed


def test_a_redelivered_message_does_not_run_a_job_twice(platform_admin, sent, new_migration):
    job = _queued_job(platform_admin)
    assert _claim(job) == 1
    assert jobs.job_execute(job_id=job.job_id) == "already-running"
    job.job.refresh_from_db()
    assert job.job.state == "running" and job.attempts == 1


def test_the_sweeper_requeues_a_job_whose_worker_died_and_gives_up_after_max_attempts(
    platform_admin, sent, settings, new_migration
):
    settings.MIGRATIONS_JOB_MAX_ATTEMPTS = 2
    job = _queued_job(platform_admin)
    for attempt in (1, 2):
        Job.objects.filter(pk=job.job_id).update(state="queued")
        assert _claim(job) == attempt
        Job.objects.filter(pk=job.job_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        result = jobs.job_sweep()
        job.refresh_from_db()
        job.job.refresh_from_db()
        if attempt == 1:
            assert result["retried"] == 1 and job.status in ("pending", "queued")
        else:
            assert result["failed"] == 1 and job.status == "failed"
            assert "stopped responding" in job.error


def test_a_queued_job_whose_message_was_lost_is_queued_again(platform_admin, sent, settings, new_migration):
    settings.JOBS_QUEUED_GRACE_SECONDS = 0
    job = _queued_job(platform_admin)
    Job.objects.filter(pk=job.job_id).update(queued_at=timezone.now() - timedelta(seconds=5))
    before = len(sent)
    assert jobs.job_sweep()["resent"] >= 1
    assert job.pk in sent[before:]


# --- screens and permissions -----------------------------------------------------------------


def test_viewers_see_the_status_of_every_placement(client_for, viewer, new_migration):
    pool = _fake_pools(1)[0]
    response = client_for(viewer).get(LIST)
    assert response.status_code == 200
    body = response.content.decode()
    assert "control plane" in body and pool.schema_name in body and MIGRATION_NAME in body
    assert "Only Admins start migration runs." in body


def test_the_status_table_filters_and_paginates(client_for, viewer):
    _fake_pools(60)
    pools = Placement.objects.filter(kind="pool").count()  # 60 plus any spare pools opened earlier in the session
    page2 = client_for(viewer).get(LIST, {"kind": "pool", "page": 2})
    assert f"51–{min(pools, 100)} of {pools}" in page2.content.decode()
    only = client_for(viewer).get(LIST, {"q": "nowhere_7"}, headers={"HX-Request": "true"})
    assert "nowhere_7" in only.content.decode() and "nowhere_8" not in only.content.decode()
    assert "<html" not in only.content.decode()  # htmx gets the fragment only


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(LIST)
    assert response.status_code == 302 and "/login" in response["Location"]


def test_outsiders_cannot_see_migrations(client_for, outsider):
    assert client_for(outsider).get(LIST).status_code == 403


@pytest.mark.parametrize("persona", ["viewer", "operator"])
def test_only_admins_start_runs(client_for, persona, request, sent, new_migration):
    user = request.getfixturevalue(persona)
    response = client_for(user).post(reverse("migration_runs:run_start"), {"scope": "all"})
    assert response.status_code == 403
    assert not MigrationRun.objects.exists()


def test_an_admin_starts_a_run_and_watches_it(client_for, platform_admin, sent, new_migration):
    client = client_for(platform_admin)
    response = client.post(reverse("migration_runs:run_start"), {"scope": "selected", "targets": [plans.CONTROL]})
    run = MigrationRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("migration_runs:run_detail", args=[run.pk])
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert 'hx-trigger="every 2s"' in page.content.decode() and "progress-bar" in page.content.decode()
    fragment = client.get(response["Location"], headers={"HX-Request": "true"})
    assert 'id="live"' in fragment.content.decode() and "<html" not in fragment.content.decode()


@pytest.mark.django_db(databases=["default", "owner"])  # sqlmigrate renders through the owner alias
def test_a_dry_run_shows_the_plan_and_sql_and_changes_nothing(client_for, platform_admin, sent, new_migration):
    response = client_for(platform_admin).post(reverse("migration_runs:run_start"), {"scope": "all", "dry_run": "1"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "ADD CONSTRAINT migtest_no_forbidden_names" in body
    assert not MigrationRun.objects.exists() and sent == []


def test_bad_start_input_gets_one_sentence(client_for, platform_admin, sent):
    client = client_for(platform_admin)
    response = client.post(reverse("migration_runs:run_start"), {"scope": "selected"}, follow=True)
    assert "Choose at least one placement" in response.content.decode()
    response = client.post(reverse("migration_runs:run_start"), {"scope": "all", "canary_size": "-3"}, follow=True)
    assert "canary batch size must be a whole number" in response.content.decode()
    assert not MigrationRun.objects.exists()


@pytest.mark.parametrize("action", ["run_cancel", "run_approve", "run_reject", "run_resume"])
def test_viewers_and_operators_cannot_change_runs(client_for, viewer, operator, platform_admin, sent, action):
    run = services.run_start(actor=platform_admin, target_keys=[plans.CONTROL])
    for user in (viewer, operator):
        assert client_for(user).post(reverse(f"migration_runs:{action}", args=[run.pk])).status_code == 403


def test_run_pages_of_unknown_runs_are_404(client_for, viewer):
    import uuid

    assert client_for(viewer).get(reverse("migration_runs:run_detail", args=[uuid.uuid4()])).status_code == 404


# --- API and command -------------------------------------------------------------------------


@pytest.mark.django_db(databases=["default", "owner"])  # sqlmigrate renders through the owner alias
def test_the_api_reads_for_viewers_and_starts_runs_for_admins_only(
    api_client_for, viewer, platform_admin, sent, new_migration
):
    as_viewer = api_client_for(viewer)
    status = as_viewer.get("/api/migrations/status?pending_only=true").json()
    assert any(row["key"] == plans.CONTROL and f"workspace.{MIGRATION_NAME}" in row["pending"] for row in status)
    denied = as_viewer.post("/api/migrations/runs", {"placements": None}, content_type="application/json")
    assert denied.status_code == 403 and not MigrationRun.objects.exists()

    as_admin = api_client_for(platform_admin)
    dry = as_admin.post("/api/migrations/runs", {"dry_run": True}, content_type="application/json")
    assert dry.status_code == 200 and f"workspace.{MIGRATION_NAME}" in dry.json()["sql"]
    created = as_admin.post("/api/migrations/runs", {"placements": [plans.CONTROL]}, content_type="application/json")
    assert created.status_code == 201
    run_id = created.json()["id"]
    detail = as_viewer.get(f"/api/migrations/runs/{run_id}").json()
    assert detail["triggered_by"] == "ada_admin" and detail["via"] == "api"
    jobs = as_viewer.get(f"/api/migrations/runs/{run_id}/jobs").json()
    assert [j["target"] for j in jobs] == [plans.CONTROL]
    assert as_viewer.post(f"/api/migrations/runs/{run_id}/cancel").status_code == 403


def test_the_api_refuses_anonymous_callers(client):
    assert client.get("/api/migrations/status").status_code == 401


def test_migrate_tenants_no_wait_prints_the_run_id(capsys, sent, new_migration):
    call_command("migrate_tenants", "--no-wait", "--placement", "control")
    run = MigrationRun.objects.get()
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(run.pk)
    assert run.via == "cli" and run.created_by_label == "manage.py migrate_tenants"


@pytest.mark.django_db(databases=["default", "owner"])  # sqlmigrate renders through the owner alias
def test_migrate_tenants_dry_run_prints_plan_and_sql(capsys, new_migration):
    call_command("migrate_tenants", "--dry-run", "--placement", "control")
    out = capsys.readouterr().out
    assert f"workspace.{MIGRATION_NAME}" in out and "ADD CONSTRAINT migtest_no_forbidden_names" in out
    assert not MigrationRun.objects.exists()


def test_migrate_tenants_rejects_unknown_placements():
    with pytest.raises(CommandError, match="Unknown placement “nope”"):
        call_command("migrate_tenants", "--placement", "nope")
