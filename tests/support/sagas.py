"""Test support for sagas and other jobs: a real Celery worker (and beat) in a subprocess.

Operator personas are the shared ones in tests/support/personas.py.
"""

from __future__ import annotations

import os
import subprocess
import time

from tests.support.workers import PrivateBroker, spawn_celery, terminate

# Tiny leases and backoffs so fault-injection runs converge in seconds (tests/support/faults.py).
FAST_SAGA_ENV = {
    "JOBS_FAULT_INJECTION": "1",
    "SAGA_STEP_LEASE_SECONDS": "1.5",
    "JOBS_HEARTBEAT_SECONDS": "0.5",
    "JOBS_SWEEP_INTERVAL_SECONDS": "0.5",
    "JOBS_QUEUED_GRACE_SECONDS": "2",
    "JOBS_RETRY_BACKOFF_SECONDS": "0.05",
    "JOBS_RETRY_BACKOFF_MAX_SECONDS": "0.2",
}


class CeleryHarness:
    """A private broker (filesystem folder, or SAGA_TEST_BROKER_URL e.g. redis://…/4), one solo-pool
    worker that the tests may kill and restart, and a beat process that sends the sweeper."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self.broker = PrivateBroker(os.environ.get("SAGA_TEST_BROKER_URL") or "filesystem://", prefix="saga-broker-")
        self.folder = self.broker.folder
        self.broker_url = self.broker.url
        self.env = self.broker.worker_env({**FAST_SAGA_ENV, **(extra_env or {})})
        self.worker: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self.restarts = 0

    def _spawn(self, *args: str) -> subprocess.Popen:
        return spawn_celery(list(args), env=self.env, log=self.folder / f"{args[0]}-{self.restarts}.log")

    def start(self, *, worker: bool = True) -> CeleryHarness:
        """Attach the broker and start beat, and the worker unless `worker=False` (then work waits in
        the queue until `start_worker()`, e.g. so a screen can be seen before anything ran)."""
        self.broker.attach()  # the test process publishes to the same private broker
        if worker:
            self.start_worker()
        self.beat = self._spawn(
            "beat", "-l", "warning", "-s", str(self.folder / "beat-schedule"), "--max-interval", "1"
        )
        return self

    def start_worker(self) -> None:
        self.worker = self._spawn("worker", "-l", "warning", "--pool", "solo", "--without-gossip", "--without-mingle")

    def stop_worker(self) -> None:
        """SIGTERM (then SIGKILL) the worker; queued work waits for the next `start_worker()`."""
        terminate(self.worker, timeout=10)
        self.worker = None

    def ensure_worker(self) -> bool:
        """Restart the worker if it died (fault injection kills it). True if it was restarted."""
        if self.worker is not None and self.worker.poll() is not None:
            self.restarts += 1
            self.start_worker()
            return True
        return False

    def stop(self) -> None:
        terminate(self.worker, self.beat, timeout=10)
        self.broker.close()

    def logs(self) -> str:
        return self.broker.logs(tail=3000)


def wait_for_sagas(harness: CeleryHarness, saga_ids, *, timeout: float = 120.0) -> list:
    """Wait until every saga is terminal, restarting the worker whenever it dies."""
    from sagas.models import TERMINAL_SAGA_STATES, Saga

    deadline = time.monotonic() + timeout
    ids = [str(i) for i in saga_ids]
    while time.monotonic() < deadline:
        harness.ensure_worker()
        sagas = list(Saga.objects.filter(id__in=ids))
        if len(sagas) == len(ids) and all(s.state in TERMINAL_SAGA_STATES for s in sagas):
            return sagas
        time.sleep(0.1)
    pending = Saga.objects.filter(id__in=ids).exclude(state__in=TERMINAL_SAGA_STATES)
    raise AssertionError(
        f"{pending.count()} sagas did not settle: {[(s.saga_type, s.state, s.input.get('_fault')) for s in pending]}\n"
        + harness.logs()
    )
