"""Job kinds: what a kind of job does, registered once per process by the app that owns it.

    from jobs.registry import JobContext, JobHandler, register

    @register
    class TenantExport(JobHandler):
        kind = "tenants.export"
        title = "Export a tenant"

        def run(self, ctx: JobContext) -> dict:
            for done, total in copy_rows(ctx.job.payload["tenant_id"]):
                ctx.progress(done, total)
            return {"path": ...}

    job_create(kind="tenants.export", payload={"tenant_id": str(tenant.pk)}, actor=request.user)

`run` runs outside any transaction and must be safe to run again: a worker may die after its
side effects and before they are recorded (the sweeper then hands the job to another attempt).
Every other hook runs *inside* the engine's transaction that records the transition, after the
handler's `lock` — so a hook's audit rows, events and domain updates commit with it or not at all.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings

if TYPE_CHECKING:
    from jobs.models import Job


class PermanentError(Exception):
    """A failure that retrying cannot fix (bad input, a conflict): give up at once. The message is for people."""


@dataclass(frozen=True)
class Refuse:
    """From `admit`: this job must not run (its reason is kept as the job's error); it ends cancelled."""

    reason: str


@dataclass(frozen=True)
class Defer:
    """From `admit`: not yet; try again in `seconds` (no attempt is used up)."""

    seconds: float


@dataclass(frozen=True)
class Skipped:
    """From `run`: there was nothing to do; the job ends `skipped` with this result."""

    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobContext:
    """What `run` gets: the job as claimed, the attempt that holds it, progress and cancellation."""

    job: Job
    attempt: int
    _progress: Any = None  # set by the engine: callable(done, total, note)
    _cancelled: Any = None  # set by the engine: callable() -> bool

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    def progress(self, done: int, total: int | None = None, note: str = "") -> None:
        """Report progress for live screens (written at most about once a second)."""
        if self._progress is not None:
            self._progress(done, total, note)

    def cancel_requested(self) -> bool:
        """True once an operator asked to cancel this running job; stop at a safe point and return."""
        return bool(self._cancelled and self._cancelled())


class JobHandler:
    """Override what the kind needs; the defaults are a plain retried job with generic events."""

    kind: ClassVar[str]
    title: ClassVar[str] = ""
    # None: the JOBS_* settings.
    max_attempts: ClassVar[int | None] = None
    lease_seconds: ClassVar[float | None] = None
    # Chain continuations (see on_succeeded) in the same worker without a broker round trip.
    chain: ClassVar[bool] = True
    # A group's later batches wait while an earlier batch of this kind has a failed job (canaries).
    halt_after_failed_batch: ClassVar[bool] = False
    # Append JobStarted/JobSucceeded/… to the control-plane log; kinds with their own events turn it off.
    record_events: ClassVar[bool] = True
    # Offer cancel/retry on the Jobs screen; kinds with their own screen and rules (sagas, runs) turn it off.
    operator_actions: ClassVar[bool] = True

    def retry_delay(self, attempt: int) -> float | None:
        """Seconds before retrying after failed attempt `attempt`; None: the engine's JOBS_RETRY_BACKOFF_* curve."""
        return None

    def cap(self) -> int | None:
        """How many jobs of this kind may be queued or running per concurrency key; None = no cap."""
        return None

    def attempts_allowed(self) -> int:
        return self.max_attempts or int(settings.JOBS_MAX_ATTEMPTS)

    def lease(self) -> float:
        return float(self.lease_seconds or settings.JOBS_LEASE_SECONDS)

    # --- inside the engine's transactions -------------------------------------------------
    def lock(self, job: Job) -> None:
        """Take the locks the hooks below need (e.g. the saga row) before the engine touches the job row,
        so every writer takes them in the same order."""

    def admit(self, job: Job) -> Refuse | Defer | Skipped | None:
        """Whether the job may start now (in the claim's transaction). None: run it.

        Returning None must write nothing (the claim that follows may still lose a race); put the
        writes that go with starting in `on_started`. Refuse/Defer/Skipped may write: they stand."""
        return None

    def on_started(self, job: Job, attempt: int) -> None:
        """Claimed: attempt `attempt` runs it now."""

    def on_succeeded(self, job: Job, result: dict[str, Any]) -> Job | None:
        """Recorded as succeeded (or skipped). May return a follow-up job created with `send=False`:
        the engine runs it next in this worker (when `chain`) or sends it."""
        return None

    def retryable(self, job: Job, exc: BaseException) -> bool:
        return not isinstance(exc, PermanentError)

    def on_retry(self, job: Job, error: str, delay: float) -> None:
        """The attempt failed and the job will run again in `delay` seconds."""

    def on_failed(self, job: Job, error: str) -> None:
        """Out of attempts, a permanent error, or its worker died once too often: the job ended failed."""

    def on_lost(self, job: Job) -> None:
        """Its worker stopped renewing the lease; the job is pending again for another attempt."""

    def on_cancelled(self, job: Job, reason: str) -> None:
        """Ended cancelled before running (refused by `admit`, or cancelled by an operator)."""

    def on_group_idle(self, group_type: str, group_id: str) -> None:
        """After a job of a group ended and nothing else in the group can run now or later."""

    # --- outside transactions ------------------------------------------------------------
    def run(self, ctx: JobContext) -> dict[str, Any] | Skipped | None:
        raise NotImplementedError


_REGISTRY: dict[str, JobHandler] = {}


def register(handler_class: type[JobHandler]) -> type[JobHandler]:
    """Class decorator: register one instance of the handler under its `kind`."""
    kind = handler_class.kind
    if not kind or len(kind) > 64:
        raise ValueError(f"A job kind needs a name of 1 to 64 characters, not {kind!r}.")
    _REGISTRY[kind] = handler_class()
    return handler_class


def handler_for(kind: str) -> JobHandler:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise LookupError(f"Unknown job kind {kind!r}: is the app that registers it installed?") from None


def kinds() -> list[str]:
    return sorted(_REGISTRY)


def worker_name() -> str:
    return f"{socket.gethostname()}:{threading.get_native_id()}"
