"""Fault injection for the crash tests: the job engine's hook (JOBS_FAULT_HOOK) in test settings only.

A job asks for a fault through its payload: `{"_fault": {"step": name, "mode": mode}}` (sagas copy
their input's `_fault` into each step's jobs; a job without steps leaves "step" out). Modes:

- "kill": end the worker process after the work's side effects happened but before they were
  recorded — the hardest case for resuming (the work must be idempotent); first attempt only.
  With `"point": name`, at the handler's own fault point of that name instead (jobs.services.fault_point),
  the first time the first attempt reaches it.
- "raise": the work raises on every attempt; "raise_once": on the first attempt only.
- "kill_compensation" / "raise_compensation": the same for a saga step's compensation.
- "raise_after_statement" with "n": N: on the first attempt, the work raises right after its Nth SQL
  statement has run (every statement through psycopg: Django's connections and the raw owner and
  bootstrap connections alike; transaction control — BEGIN, COMMIT, SAVEPOINT … — is not counted).
  What autocommitted stays, what was in a transaction rolls back: a crash at that point. "kill"
  with "n" ends the worker process there instead. Mode "count_statements" counts a step's statements.
  `"n_by_step": {step: N, …}` instead of "step" and "n" arms every named step of the saga at once
  (each with its own N; for counting, any N).

Production settings never name this module, so nothing here can run outside the test suite.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

logger = logging.getLogger(__name__)
COUNTED: dict[str, int] = {}  # step name → statements its last counted run executed (count_statements)


_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START TRANSACTION")


class _StatementFault:
    """Patches psycopg's Cursor.execute while armed: counts statements, fires after the Nth."""

    def __init__(self) -> None:
        self.original: Any = None
        self.count = 0
        self.target: int | None = None
        self.kill = False
        self.fired = False

    def _text(self, query: Any) -> str:
        if isinstance(query, bytes | str):
            return query.decode() if isinstance(query, bytes) else query
        try:
            return query.as_string(None)
        except Exception:  # noqa: BLE001 - a Composed needing a connection: count it anyway
            return "?"

    def arm(self, target: int | None, *, kill: bool = False) -> None:
        import psycopg

        self.count, self.target, self.kill, self.fired = 0, target, kill, False
        self.thread = threading.get_ident()
        if self.original is None:
            self.original = psycopg.Cursor.execute
            fault = self

            def execute(cursor, query, *args, **kwargs):  # noqa: ANN001
                result = fault.original(cursor, query, *args, **kwargs)
                # Only the step's own thread: a connection pool configures new connections in its threads.
                if (fault.target is not None or fault.counting) and threading.get_ident() == fault.thread:
                    text = fault._text(query).lstrip().upper()
                    if not text.startswith(_TRANSACTION_CONTROL):
                        fault.count += 1
                        if fault.target is not None and fault.count == fault.target and not fault.fired:
                            fault.fired = True
                            fault.target = None
                            if fault.kill:
                                logger.warning("fault injection: killing the worker after statement %s", fault.count)
                                os._exit(137)
                            raise RuntimeError(f"Injected fault after SQL statement {fault.count}.")
                return result

            psycopg.Cursor.execute = execute  # type: ignore[method-assign,assignment]  # tests only
        self.counting = target is None

    def disarm(self) -> int:
        self.target, self.counting = None, False
        return self.count


STATEMENTS = _StatementFault()
STATEMENTS.counting = False


def inject(job: Any, point: str, attempt: int) -> None:
    fault = (job.payload or {}).get("_fault") or {}
    by_step = fault.get("n_by_step")
    if by_step is not None:  # one fault per named step, in the same saga
        if job.payload.get("step") not in by_step:
            return
        fault = {**fault, "step": job.payload["step"], "n": by_step[job.payload["step"]]}
    if not fault or fault.get("step") != job.payload.get("step"):
        return
    mode = fault.get("mode")
    if mode in ("raise_after_statement", "count_statements") and not job.kind.endswith(".compensate"):
        if point == "run" and (attempt == 1 or mode == "count_statements"):
            target = None if mode == "count_statements" else int(fault["n"])
            STATEMENTS.arm(target, kill=bool(fault.get("kill")))
        elif point == "after_run":
            counted = STATEMENTS.disarm()
            if mode == "count_statements":
                COUNTED[str(fault.get("step"))] = counted
        return
    name = fault.get("step") or job.kind
    compensating = job.kind.endswith(".compensate")
    if compensating:
        if point == "after_run" and mode == "kill_compensation" and attempt == 1:
            logger.warning("fault injection: killing the worker after compensating %s", name)
            os._exit(137)
        if point == "run" and mode == "raise_compensation":
            raise RuntimeError(f"Injected fault compensating {name} (attempt {attempt}).")
        return
    if point == fault.get("point", "after_run") and mode == "kill" and attempt == 1:
        logger.warning("fault injection: killing the worker after %s", name)
        os._exit(137)
    if point == "run" and (mode == "raise" or (mode == "raise_once" and attempt == 1)):
        raise RuntimeError(f"Injected fault in step {name} (attempt {attempt}).")
