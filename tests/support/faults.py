"""Fault injection for the crash tests: the job engine's hook (JOBS_FAULT_HOOK) in test settings only.

A job asks for a fault through its payload: `{"_fault": {"step": name, "mode": mode}}` (sagas copy
their input's `_fault` into each step's jobs; a job without steps leaves "step" out). Modes:

- "kill": end the worker process after the work's side effects happened but before they were
  recorded — the hardest case for resuming (the work must be idempotent); first attempt only.
  With `"point": name`, at the handler's own fault point of that name instead (jobs.services.fault_point),
  the first time the first attempt reaches it.
- "raise": the work raises on every attempt; "raise_once": on the first attempt only.
- "kill_compensation" / "raise_compensation": the same for a saga step's compensation.

Production settings never name this module, so nothing here can run outside the test suite.
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger(__name__)


def inject(job: Any, point: str, attempt: int) -> None:
    fault = (job.payload or {}).get("_fault") or {}
    if not fault or fault.get("step") != job.payload.get("step"):
        return
    mode = fault.get("mode")
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
