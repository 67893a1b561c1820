"""The check registry: one small function per automated control, registered by name.

    from compliance.checks.registry import Outcome, check

    @check("mfa_enrolled")
    def mfa_enrolled() -> Outcome:
        \"\"\"Proves every active operator has a confirmed second factor.\"\"\"
        missing = [...]
        if missing:
            return Outcome.failed(f"{len(missing)} operators have no second factor.", missing=missing)
        return Outcome.passed("Every active operator has a confirmed second factor.", operators=n)

A check reads the live system (database, event logs, settings) and returns pass / fail / not
applicable with its evidence (JSON-serialisable). A check that raises is recorded as `error` with
the exception's message by the evaluation, never as a pass. Apps above compliance register their
own checks from `AppConfig.ready()` (saas_admin registers the ones that read operators' devices
and tokens) — the registry is how they reach us without an upward import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PASS, FAIL, ERROR, NOT_APPLICABLE = "pass", "fail", "error", "na"


@dataclass(frozen=True)
class Outcome:
    status: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def passed(cls, summary: str, **evidence: Any) -> Outcome:
        return cls(PASS, summary, evidence)

    @classmethod
    def failed(cls, summary: str, **evidence: Any) -> Outcome:
        return cls(FAIL, summary, evidence)

    @classmethod
    def not_applicable(cls, summary: str, **evidence: Any) -> Outcome:
        return cls(NOT_APPLICABLE, summary, evidence)

    @classmethod
    def judged(cls, problems: list[Any], ok: str, bad: str, **evidence: Any) -> Outcome:
        """Fail with `bad` (formatted with n=len(problems)) when there are problems, else pass with `ok`."""
        if problems:
            return cls(FAIL, bad.format(n=len(problems)), {"problems": problems, **evidence})
        return cls(PASS, ok, {"problems": [], **evidence})


CheckFunction = Callable[[], Outcome]
_CHECKS: dict[str, CheckFunction] = {}


def check(name: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register `function` as the check `name`; its docstring says what a pass proves."""

    def decorator(function: CheckFunction) -> CheckFunction:
        if not (function.__doc__ or "").strip():
            raise TypeError(f"Check {name} needs a docstring saying what it proves.")
        if name in _CHECKS and _CHECKS[name] is not function:
            raise ValueError(f"Check {name} is registered twice.")
        _CHECKS[name] = function
        return function

    return decorator


def get(name: str) -> CheckFunction | None:
    return _CHECKS.get(name)


def names() -> list[str]:
    return sorted(_CHECKS)


def proves(name: str) -> str:
    """The first paragraph of the check's docstring: what it proves, for the screens."""
    function = _CHECKS.get(name)
    doc = (function.__doc__ or "") if function else ""
    return " ".join(doc.strip().split("\n\n")[0].split())
