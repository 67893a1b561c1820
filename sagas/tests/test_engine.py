"""The saga orchestrator on the job engine, driven in-process step by step (the real-worker flows are
in tenants/tests/test_provisioning_worker.py). The engine's messages are captured instead of sent so
each test decides what gets delivered, lost or delivered twice.

Transactional tests name the owner alias too: flushing `default` flushes nothing, because the
app-role alias migrates no models (see saas_admin/routers.py)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from core.actors import SystemActor
from core.errors import Conflict
from jobs import services as jobs
from jobs.models import Job
from sagas import services
from sagas.models import Saga, SagaState, StepState
from sagas.registry import PermanentStepError, SagaDefinition, StepDefinition, saga_register

EFFECTS: set[str] = set()
FAILS: dict[str, int] = {}


def _action(name):
    def run(ctx):
        if FAILS.get(name, 0) > 0:
            FAILS[name] -= 1
            raise RuntimeError(f"{name} is unwell")
        if FAILS.get(name) == -1:
            raise PermanentStepError(f"{name} refuses this input.")
        EFFECTS.add(f"{ctx.input['key']}:{name}")
        return {f"{name}_done": True}

    return run


def _undo(name):
    def run(ctx):
        EFFECTS.discard(f"{ctx.input['key']}:{name}")

    return run


saga_register(
    SagaDefinition(
        saga_type="test.three_steps",
        title="Three steps",
        steps=tuple(StepDefinition(n, _action(n), _undo(n)) for n in ("one", "two", "three")),
    )
)


class Mailbox:
    """The engine's Celery messages (job ids), captured in order."""

    def __init__(self):
        self.messages: list[int] = []

    def deliver_one(self) -> str:
        return jobs.job_execute(job_id=self.messages.pop(0), heartbeat=False)

    def drain(self, limit: int = 100) -> None:
        for _ in range(limit):
            if not self.messages:
                return
            self.deliver_one()
        raise AssertionError("the saga did not settle")


@pytest.fixture
def mailbox(monkeypatch, settings):
    from jobs import tasks

    settings.JOBS_RETRY_BACKOFF_SECONDS = 0
    settings.JOBS_CHAIN = False  # one message per step, so each test controls delivery
    box = Mailbox()
    monkeypatch.setattr(tasks.job_run, "apply_async", lambda args, countdown=None: box.messages.append(args[0]))
    EFFECTS.clear()
    FAILS.clear()
    return box


def _job(saga, name, compensation=False) -> Job:
    step = saga.steps.select_related("job", "compensation_job").get(name=name)
    return step.compensation_job if compensation else step.job


def _start(key="k"):
    return services.saga_start(saga_type="test.three_steps", input={"key": key}, actor=SystemActor("tests"))


def _states(saga):
    return [s.state for s in saga.steps.order_by("index")]


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_saga_runs_every_step_in_order_and_completes(mailbox):
    saga = _start()
    mailbox.drain()
    saga.refresh_from_db()
    assert saga.state == SagaState.COMPLETED
    assert _states(saga) == ["completed"] * 3
    assert EFFECTS == {"k:one", "k:two", "k:three"}
    assert saga.context == {"one_done": True, "two_done": True, "three_done": True}


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_transient_failure_is_retried_and_the_attempts_are_counted(mailbox):
    FAILS["two"] = 2
    saga = _start()
    mailbox.drain()
    saga.refresh_from_db()
    assert saga.state == SagaState.COMPLETED
    assert saga.steps.get(name="two").attempts == 3


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_step_out_of_attempts_compensates_every_step_that_ran_in_reverse(mailbox):
    FAILS["three"] = 99
    saga = _start()
    mailbox.drain()
    saga.refresh_from_db()
    assert saga.state == SagaState.COMPENSATED
    assert EFFECTS == set()
    assert _states(saga) == ["compensated"] * 3
    assert "Step “three” failed after 3 attempts" in saga.error
    one, two = saga.steps.get(name="one"), saga.steps.get(name="two")
    assert two.compensated_at <= one.compensated_at


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_permanent_failure_compensates_without_retrying(mailbox):
    FAILS["two"] = -1
    saga = _start()
    mailbox.drain()
    saga.refresh_from_db()
    assert saga.state == SagaState.COMPENSATED
    assert saga.steps.get(name="two").attempts == 1
    assert saga.error == "Step “two” failed: two refuses this input."
    assert _states(saga) == ["compensated", "compensated", "pending"]


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_redelivered_message_does_not_run_a_step_twice(mailbox):
    saga = _start()
    first = mailbox.messages[0]
    mailbox.drain()
    assert jobs.job_execute(job_id=first) == "already-succeeded"
    assert saga.steps.get(name="one").attempts == 1


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_the_same_idempotency_key_returns_the_first_saga(mailbox):
    a = services.saga_start(saga_type="test.three_steps", input={"key": "x"}, idempotency_key="signup:1")
    b = services.saga_start(saga_type="test.three_steps", input={"key": "x"}, idempotency_key="signup:1")
    assert Job.objects.filter(group_id=str(a.id)).count() == 1  # one first step, not two
    assert a.id == b.id
    assert Saga.objects.count() == 1


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_the_sweeper_resumes_a_step_whose_worker_died(mailbox):
    saga = _start()
    # A worker claimed the step and died: the step is running with a lease in the past, its message gone.
    job = _job(saga, "one")
    jobs.job_claim(job_id=job.pk)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timezone.timedelta(seconds=1))
    mailbox.messages.clear()
    counts = jobs.job_sweep()
    assert counts["expired"] == 1
    mailbox.drain()
    saga.refresh_from_db()
    assert saga.state == SagaState.COMPLETED
    assert saga.steps.get(name="one").attempts == 2


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_the_sweeper_resends_a_lost_message(mailbox):
    saga = _start()
    mailbox.messages.clear()  # the broker lost the first message
    Job.objects.filter(pk=_job(saga, "one").pk).update(queued_at=timezone.now() - timezone.timedelta(minutes=5))
    assert jobs.job_sweep()["resent"] == 1
    mailbox.drain()
    saga.refresh_from_db()
    assert saga.state == SagaState.COMPLETED


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_stale_worker_finishing_late_records_nothing(mailbox):
    saga = _start()
    mailbox.messages.clear()
    job, attempt = jobs.job_claim(job_id=_job(saga, "one").pk)
    # The worker that held attempt 1 comes back after the step was handed to attempt 2.
    Job.objects.filter(pk=job.pk).update(attempts=2)
    assert jobs._record_success(job, attempt, {}, 5, {}) == "stale"
    assert saga.steps.get(name="one").state == StepState.RUNNING


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_failing_compensation_leaves_the_saga_failed_and_retry_resumes_it(mailbox, operator):
    FAILS["three"] = 99
    saga = _start()
    from sagas import registry

    original = registry.saga_definition("test.three_steps").step("two").compensate

    broken = registry.StepDefinition("two", _action("two"), lambda ctx: (_ for _ in ()).throw(RuntimeError("db down")))
    definition = registry.saga_definition("test.three_steps")
    registry.saga_register(
        registry.SagaDefinition(
            definition.saga_type, definition.title, (definition.steps[0], broken, definition.steps[2])
        )
    )
    try:
        mailbox.drain()
        saga.refresh_from_db()
        assert saga.state == SagaState.FAILED
        assert "Compensating step “two” failed after 5 attempts" in saga.error
        assert "k:one" in EFFECTS  # nothing below the stuck step was undone out of order
    finally:
        registry.saga_register(definition)
    assert original is not None
    services.saga_retry(saga_id=saga.id, actor=operator)
    mailbox.drain()
    saga.refresh_from_db()
    assert saga.state == SagaState.COMPENSATED
    assert EFFECTS == set()


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_cancel_stops_before_the_next_step_and_undoes_the_finished_ones(mailbox, operator):
    saga = _start()
    mailbox.deliver_one()  # step one ran; step two's message is waiting
    services.saga_cancel(saga_id=saga.id, actor=operator)
    mailbox.drain()
    saga.refresh_from_db()
    assert saga.state == SagaState.COMPENSATED
    assert saga.error == f"Cancelled by {operator.username}."
    assert EFFECTS == set()
    assert _states(saga) == ["compensated", "pending", "pending"]


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_operator_actions_refuse_a_finished_saga_with_one_sentence(mailbox, operator):
    saga = _start()
    mailbox.drain()
    with pytest.raises(Conflict, match="A completed saga cannot be cancelled."):
        services.saga_cancel(saga_id=saga.id, actor=operator)
    with pytest.raises(Conflict, match="A completed saga cannot be retried."):
        services.saga_retry(saga_id=saga.id, actor=operator)


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_worker_runs_the_following_steps_itself_without_a_message_each(mailbox, settings):
    settings.JOBS_CHAIN = True
    saga = _start()
    assert len(mailbox.messages) == 1
    mailbox.deliver_one()
    saga.refresh_from_db()
    assert saga.state == SagaState.COMPLETED
    assert mailbox.messages == []


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_compensation_whose_worker_died_is_resumed_by_the_sweeper(mailbox):
    FAILS["three"] = -1
    saga = _start()
    while saga.steps.filter(state=StepState.COMPENSATED).count() < 1:  # step three failed: nothing to undo in it
        mailbox.deliver_one()
    # The worker claimed the compensation of step two, undid nothing yet, and died.
    mailbox.messages.clear()
    comp = _job(saga, "two", compensation=True)
    jobs.job_claim(job_id=comp.pk)
    Job.objects.filter(pk=comp.pk).update(lease_expires_at=timezone.now() - timezone.timedelta(seconds=1))
    assert jobs.job_sweep()["expired"] == 1
    mailbox.drain()
    saga.refresh_from_db()
    assert saga.state == SagaState.COMPENSATED
    assert EFFECTS == set()
    assert saga.steps.get(name="two").compensate_attempts == 2
