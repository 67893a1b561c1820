"""The job engine on its own, driven in-process. Messages are captured instead of sent (the `mailbox`
fixture), so each test decides what is delivered, lost or delivered twice; real workers are in
test_engine_worker.py. Transactional tests: the engine's transactions must really commit."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from core.errors import Conflict, NotFound
from events.models import Event
from jobs import services
from jobs.models import Job
from jobs.registry import Defer, JobContext, JobHandler, PermanentError, Refuse, Skipped, register
from jobs.services import JobCancelled

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])

RAN: list[tuple[str, int]] = []
FAILS: dict[str, int] = {}
IDLE: list[tuple[str, str]] = []


@register
class Echo(JobHandler):
    kind = "test.echo"

    def run(self, ctx: JobContext) -> dict | Skipped:
        name = ctx.payload.get("name", "")
        RAN.append((name, ctx.attempt))
        if FAILS.get(name, 0) > 0:
            FAILS[name] -= 1
            raise RuntimeError(f"{name} is unwell")
        if FAILS.get(name) == -1:
            raise PermanentError(f"{name} refuses this input.")
        if ctx.payload.get("skip"):
            return Skipped({"why": "nothing to do"})
        return {"echo": name}

    def on_group_idle(self, group_type: str, group_id: str) -> None:
        IDLE.append((group_type, group_id))


@register
class Capped(Echo):
    kind = "test.capped"
    halt_after_failed_batch = True

    def cap(self) -> int | None:
        return 1


@register
class Chained(Echo):
    kind = "test.chained"

    def on_succeeded(self, job, result):
        left = job.payload.get("left", 0)
        if left:
            return services.job_create(
                kind=self.kind,
                payload={"name": f"{job.payload['name']}+", "left": left - 1},
                group=job.group,
                send=False,
            )
        return None


@register
class Picky(Echo):
    kind = "test.picky"

    def admit(self, job):
        if job.payload.get("refuse"):
            return Refuse("Not for me.")
        if job.payload.get("defer") and not job.run_after:
            return Defer(30)
        return None


@register
class Patient(JobHandler):
    kind = "test.patient"

    def run(self, ctx: JobContext) -> dict:
        for i in range(5):
            ctx.progress(i + 1, 5, f"step {i + 1}")
            if ctx.cancel_requested():
                raise JobCancelled("Stopped after an operator's request.")
            if ctx.payload.get("pause"):
                ctx.payload["pause"].wait(5)
        return {}


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[int, float | None]] = []

    def ids(self) -> list[int]:
        return [m[0] for m in self.messages]

    def deliver_one(self) -> str:
        job_id, _ = self.messages.pop(0)
        return services.job_execute(job_id=job_id, heartbeat=False)

    def drain(self, limit: int = 100) -> None:
        for _ in range(limit):
            if not self.messages:
                return
            self.deliver_one()
        raise AssertionError("the jobs did not settle")


@pytest.fixture
def mailbox(monkeypatch):
    from jobs import tasks

    box = Mailbox()
    monkeypatch.setattr(
        tasks.job_run, "apply_async", lambda args, countdown=None: box.messages.append((args[0], countdown))
    )
    RAN.clear()
    FAILS.clear()
    IDLE.clear()
    return box


def _job(job: Job) -> Job:
    return Job.objects.get(pk=job.pk)


def test_a_job_is_queued_run_once_and_records_its_result(mailbox):
    job = services.job_create(kind="test.echo", payload={"name": "a"})
    assert _job(job).state == Job.State.QUEUED and mailbox.ids() == [job.pk]
    assert mailbox.deliver_one() == "succeeded"
    done = _job(job)
    assert (done.state, done.attempts, done.result, done.error) == ("succeeded", 1, {"echo": "a"}, "")
    assert done.finished_at and done.duration_ms is not None
    assert services.job_execute(job_id=job.pk) == "already-succeeded"  # a redelivered message
    assert RAN == [("a", 1)]


def test_a_transient_failure_is_retried_with_backoff_and_the_attempts_are_counted(mailbox, settings):
    settings.JOBS_RETRY_BACKOFF_SECONDS = 0
    FAILS["b"] = 2
    job = services.job_create(kind="test.echo", payload={"name": "b"})
    mailbox.drain()
    done = _job(job)
    assert (done.state, done.attempts) == ("succeeded", 3)
    assert [e for e in Event.objects.filter(aggregate_type="job", aggregate_id=str(job.pk)).values_list(
        "event_type", flat=True
    ).order_by("version")] == [
        "JobStarted", "JobRetryScheduled", "JobStarted", "JobRetryScheduled", "JobStarted", "JobSucceeded"
    ]  # fmt: skip


def test_the_backoff_doubles_and_is_capped(settings):
    settings.JOBS_RETRY_BACKOFF_SECONDS = 2
    settings.JOBS_RETRY_BACKOFF_MAX_SECONDS = 10
    assert 2 <= services.backoff(1) <= 2.2
    assert 4 <= services.backoff(2) <= 4.4
    assert 10 <= services.backoff(5) <= 11


def test_a_job_out_of_attempts_fails_with_its_error(mailbox, settings):
    settings.JOBS_RETRY_BACKOFF_SECONDS = 0
    FAILS["c"] = 99
    job = services.job_create(kind="test.echo", payload={"name": "c"}, max_attempts=2)
    mailbox.drain()
    done = _job(job)
    assert (done.state, done.attempts, done.error) == ("failed", 2, "RuntimeError: c is unwell")


def test_a_permanent_error_fails_at_once_with_its_own_sentence(mailbox):
    FAILS["d"] = -1
    job = services.job_create(kind="test.echo", payload={"name": "d"})
    mailbox.drain()
    done = _job(job)
    assert (done.state, done.attempts, done.error) == ("failed", 1, "d refuses this input.")


def test_a_stale_worker_finishing_late_records_nothing(mailbox):
    job = services.job_create(kind="test.echo", payload={"name": "e"})
    claimed, attempt = services.job_claim(job_id=job.pk)
    # The sweeper handed the job to attempt 2 meanwhile.
    Job.objects.filter(pk=job.pk).update(attempts=2)
    assert services._record_success(claimed, attempt, {"late": True}, 5, {}) == "stale"
    assert _job(job).state == "running" and _job(job).result == {}


def test_a_claim_is_won_by_exactly_one_of_two_deliveries(mailbox):
    job = services.job_create(kind="test.echo", payload={"name": "f"})
    first = services.job_claim(job_id=job.pk)
    second = services.job_claim(job_id=job.pk)
    assert isinstance(first, tuple) and first[1] == 1
    assert second == "already-running"


def test_the_sweeper_hands_a_dead_workers_job_to_another_attempt(mailbox):
    job = services.job_create(kind="test.echo", payload={"name": "g"})
    services.job_claim(job_id=job.pk)  # a worker claimed it and died: no heartbeat renews the lease
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    mailbox.messages.clear()
    counts = services.job_sweep()
    assert (counts["expired"], counts["retried"]) == (1, 1)
    assert "stopped responding (attempt 1); retrying" in _job(job).error
    mailbox.drain()
    assert (_job(job).state, _job(job).attempts) == ("succeeded", 2)


def test_the_sweeper_fails_a_job_whose_workers_keep_dying(mailbox):
    job = services.job_create(kind="test.echo", payload={"name": "h"}, max_attempts=1)
    services.job_claim(job_id=job.pk)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.job_sweep()["failed"] == 1
    done = _job(job)
    assert done.state == "failed" and "stopped responding during 1 attempts" in done.error


def test_the_sweeper_resends_a_queued_job_whose_message_was_lost(mailbox, settings):
    settings.JOBS_QUEUED_GRACE_SECONDS = 30
    job = services.job_create(kind="test.echo", payload={"name": "i"})
    mailbox.messages.clear()  # the broker lost it
    assert services.job_sweep()["resent"] == 0  # not yet: it may just be waiting for a busy worker
    Job.objects.filter(pk=job.pk).update(queued_at=timezone.now() - timedelta(minutes=5))
    assert services.job_sweep()["resent"] == 1
    mailbox.drain()
    assert _job(job).state == "succeeded"


def test_a_cap_per_concurrency_key_holds_and_a_finished_job_hands_its_slot_on(mailbox):
    jobs = [
        services.job_create(kind="test.capped", payload={"name": f"k{i}"}, concurrency_key=key)
        for i, key in enumerate(["db1", "db1", "db1", "db2"])
    ]
    queued = [j.pk for j in Job.objects.filter(state="queued").order_by("pk")]
    assert queued == [jobs[0].pk, jobs[3].pk]  # one per server
    mailbox.deliver_one()  # db1's first job ends: the next db1 job takes its slot
    assert _job(jobs[1]).state == "queued" and _job(jobs[2]).state == "pending"
    mailbox.drain()
    assert {_job(j).state for j in jobs} == {"succeeded"}


def test_a_group_runs_its_batches_in_order_and_halts_after_a_failed_canary(mailbox):
    FAILS["canary"] = -1
    group = ("test_run", "r1")
    rows = [Job(kind="test.capped", group_type=group[0], group_id=group[1], batch=0, concurrency_key="a",
                payload={"name": "canary"})]  # fmt: skip
    rows += [
        Job(kind="test.capped", group_type=group[0], group_id=group[1], batch=1, concurrency_key=k, payload={"name": k})
        for k in ("a", "b")
    ]
    created = services.jobs_create_many(rows)
    assert [_job(j).state for j in created] == ["queued", "pending", "pending"]  # batch 1 waits for the canary
    mailbox.drain()
    assert [_job(j).state for j in created] == ["failed", "pending", "pending"]
    assert IDLE == [group]  # nothing can run any more: the run may finish


def test_a_group_without_failures_runs_every_batch_then_is_idle_once(mailbox):
    group = ("test_run", "r2")
    rows = [
        Job(kind="test.echo", group_type=group[0], group_id=group[1], batch=b, payload={"name": f"n{b}{i}"})
        for b in (0, 1)
        for i in range(2)
    ]
    created = services.jobs_create_many(rows)
    assert sorted(_job(j).state for j in created) == ["pending", "pending", "queued", "queued"]
    mailbox.drain()
    assert {_job(j).state for j in created} == {"succeeded"}
    assert IDLE == [group]


def test_a_follow_up_job_runs_in_the_same_worker_without_a_message(mailbox, settings):
    settings.JOBS_CHAIN = True
    job = services.job_create(kind="test.chained", payload={"name": "x", "left": 2}, group=("test_chain", "c1"))
    assert mailbox.deliver_one() == "succeeded"
    assert mailbox.messages == []
    assert [name for name, _ in RAN] == ["x", "x+", "x++"]
    assert Job.objects.filter(group_id="c1", state="succeeded").count() == 3
    assert IDLE == [("test_chain", "c1")]
    assert _job(job).state == "succeeded"


def test_without_chaining_a_follow_up_gets_its_own_message(mailbox, settings):
    settings.JOBS_CHAIN = False
    services.job_create(kind="test.chained", payload={"name": "y", "left": 1}, group=("test_chain", "c2"))
    mailbox.deliver_one()
    assert len(mailbox.messages) == 1
    mailbox.drain()
    assert [name for name, _ in RAN] == ["y", "y+"]


def test_admit_can_refuse_or_defer_without_using_an_attempt(mailbox):
    refused = services.job_create(kind="test.picky", payload={"name": "no", "refuse": True})
    deferred = services.job_create(kind="test.picky", payload={"name": "later", "defer": True})
    assert mailbox.deliver_one() == "refused"
    assert (_job(refused).state, _job(refused).attempts, _job(refused).error) == ("cancelled", 0, "Not for me.")
    assert mailbox.deliver_one() == "deferred"
    waiting = _job(deferred)
    assert waiting.state == "pending" and waiting.attempts == 0 and waiting.run_after > timezone.now()
    assert mailbox.messages[-1] == (deferred.pk, 30)
    assert services.job_execute(job_id=deferred.pk) == "not-due"


def test_a_skipped_job_says_there_was_nothing_to_do(mailbox):
    job = services.job_create(kind="test.echo", payload={"name": "s", "skip": True})
    mailbox.drain()
    assert (_job(job).state, _job(job).result) == ("skipped", {"why": "nothing to do"})


def test_held_jobs_wait_for_a_release(mailbox):
    group = ("test_run", "held")
    job = services.job_create(kind="test.echo", payload={"name": "h"}, group=group, held=True)
    assert mailbox.messages == [] and _job(job).state == "pending"
    assert services.job_execute(job_id=job.pk) == "held"
    assert services.jobs_release(group=group) == [job.pk]
    mailbox.drain()
    assert _job(job).state == "succeeded"


def test_progress_reported_while_running_is_visible_and_a_running_job_stops_when_cancelled(mailbox, operator):
    pause = threading.Event()
    job = services.job_create(kind="test.patient", payload={})
    mailbox.messages.clear()
    claimed, attempt = services.job_claim(job_id=job.pk)
    claimed.payload["pause"] = pause
    outcome: list = []

    def work() -> None:
        from django.db import connection

        try:
            outcome.append(services._run_claimed(claimed, attempt, heartbeat=False))
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        deadline = timezone.now() + timedelta(seconds=5)
        while _job(job).progress_done < 1 and timezone.now() < deadline:
            time.sleep(0.01)
        row = _job(job)
        assert (row.progress_done, row.progress_total, row.percent) == (1, 5, 20)
        services.job_cancel(job_id=job.pk, actor=operator)
        with pytest.raises(Conflict, match="already requested"):
            services.job_cancel(job_id=job.pk, actor=operator)
    finally:
        pause.set()
        worker.join(timeout=10)
    assert outcome == ["cancelled"]
    row = _job(job)
    assert (row.state, row.error) == ("cancelled", "Stopped after an operator's request.")
    entry = AuditEntry.objects.get(action="job.cancel")
    assert entry.actor == operator and entry.target_id == str(job.pk)


def test_operators_cancel_a_waiting_job_and_retry_a_failed_one_and_both_are_audited(mailbox, operator, settings):
    settings.JOBS_RETRY_BACKOFF_SECONDS = 0
    waiting = services.job_create(kind="test.echo", payload={"name": "w"})
    services.job_cancel(job_id=waiting.pk, actor=operator)
    assert _job(waiting).state == "cancelled" and _job(waiting).error == f"Cancelled by {operator.username}."
    assert mailbox.deliver_one() == "already-cancelled"
    with pytest.raises(Conflict, match="A cancelled job cannot be cancelled."):
        services.job_cancel(job_id=waiting.pk, actor=operator)

    FAILS["r"] = 99
    failed = services.job_create(kind="test.echo", payload={"name": "r"}, max_attempts=1)
    mailbox.drain()
    assert _job(failed).state == "failed"
    FAILS.clear()
    services.job_retry(job_id=failed.pk, actor=operator)
    mailbox.drain()
    # A fresh budget of attempts, but the counter (the fencing token) goes on from where it was.
    assert (_job(failed).state, _job(failed).attempts, _job(failed).max_attempts) == ("succeeded", 2, 4)
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == ["job.cancel", "job.retry"]
    with pytest.raises(Conflict, match="nothing left to retry"):
        services.job_retry(job_id=failed.pk, actor=operator)


def test_a_missing_or_malformed_job_id_is_not_found():
    for bad in (999999999, "abc", "1" * 40, None):
        with pytest.raises(NotFound, match="No such job."):
            services.job_get(bad)


def test_running_a_group_inline_finishes_every_job_in_order(settings):
    settings.JOBS_RETRY_BACKOFF_SECONDS = 0
    FAILS.clear()
    RAN.clear()
    FAILS["i1"] = 1
    group = ("test_inline", "g")
    services.jobs_create_many(
        [
            Job(kind="test.echo", group_type=group[0], group_id=group[1], batch=b, payload={"name": f"i{b}"})
            for b in (0, 1, 2)
        ]
    )
    services.jobs_work_inline(group=group, timeout=10)
    assert [name for name, _ in RAN] == ["i0", "i1", "i1", "i2"]
    assert set(Job.objects.filter(group_id="g").values_list("state", flat=True)) == {"succeeded"}
