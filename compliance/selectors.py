"""Reading compliance: the latest result per control, readiness per framework, trend, history.

Readiness is honest: a requirement counts as satisfied only when every applicable control mapped to
it passes — an automated control by its latest result, a manual one by an attestation valid at the
time. A requirement with a manual control nobody vouches for is `manual`, one with no control at
all is `unmapped`, and both count against readiness; `na` requirements (marked in the library, or whose every control is
inapplicable) are left out of the share.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Prefetch
from django.utils import timezone

from compliance import library
from compliance.models import Attestation, Control, Evaluation, Framework, Mapping, Requirement, Result
from core.errors import NotFound
from tenants.models import Tenant

REQUIREMENT_STATES = ("pass", "fail", "manual", "unmapped", "na")


LATEST_SQL = """
SELECT r.id FROM compliance_control c
 CROSS JOIN LATERAL (
   SELECT id FROM compliance_result
    WHERE control_id = c.id AND evaluated_at <= %s
    ORDER BY evaluated_at DESC, id DESC LIMIT 1
 ) r
"""


def latest_results(at: datetime | None = None) -> dict[int, Result]:
    """control id → its newest result (at or before `at`: the posture at a past date).

    One index probe per control (LATERAL … LIMIT 1 on `result_control_history`), so a year of hourly
    results costs what a day does."""
    with connection.cursor() as cursor:
        cursor.execute(LATEST_SQL, [at or timezone.now() + timedelta(days=1)])
        ids = [row[0] for row in cursor.fetchall()]
    return {r.control_id: r for r in Result.objects.filter(id__in=ids).defer("evidence")}


@dataclass
class RequirementStatus:
    requirement: Requirement
    state: str
    controls: list[tuple[Control, Result | None]]


@dataclass
class FrameworkStatus:
    framework: Framework
    requirements: list[RequirementStatus] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def applicable(self) -> int:
        return sum(n for state, n in self.counts.items() if state != "na")

    @property
    def satisfied(self) -> int:
        return self.counts.get("pass", 0)

    @property
    def readiness(self) -> float:
        return round(100.0 * self.satisfied / self.applicable, 1) if self.applicable else 100.0


def _state(mode: str, controls: list[tuple[bool, bool, str | None]]) -> str:
    """A requirement's state from its mode and its controls as (applicable, automated, latest status)."""
    if mode == Requirement.Mode.NOT_APPLICABLE:
        return "na"
    if not controls:
        return "unmapped"
    applicable = [(automated, status) for is_applicable, automated, status in controls if is_applicable]
    if not applicable:
        return "na"
    automated = [status for is_automated, status in applicable if is_automated]
    if any(status is None or status in ("fail", "error") for status in automated):
        return "fail"
    if any(not is_automated and status != ATTESTED for is_automated, status in applicable):
        return "manual"  # a manual control nobody vouches for (or whose attestation ran out)
    return "pass"


ATTESTED = "attested"


def attested_ids(at: datetime | None = None) -> set[int]:
    """Manual controls with an attestation valid at `at` (default: now)."""
    moment = at or timezone.now()
    return set(
        Attestation.objects.filter(attested_at__lte=moment, valid_until__gt=moment).values_list("control_id", flat=True)
    )


def requirement_state(
    requirement: Requirement, controls: list[tuple[Control, Result | None]], attested: set[int] | None = None
) -> str:
    attested = attested or set()
    return _state(
        requirement.mode,
        [(c.applicable, c.automated, r.status if r else (ATTESTED if c.pk in attested else None)) for c, r in controls],
    )


def framework_counts(
    frameworks: list[Framework], latest: dict[int, Result], at: datetime | None = None
) -> dict[int, FrameworkStatus]:
    """Requirement counts per state for several frameworks in four queries and no model instances (the
    overview needs the counts, not each requirement)."""
    attested = attested_ids(at)
    controls = {
        pk: (applicable, bool(check), latest[pk].status if pk in latest else (ATTESTED if pk in attested else None))
        for pk, applicable, check in Control.objects.values_list("id", "applicable", "check_name")
    }
    mapped: dict[int, list[int]] = defaultdict(list)
    for requirement_id, control_id in Mapping.objects.filter(requirement__framework__in=frameworks).values_list(
        "requirement_id", "control_id"
    ):
        mapped[requirement_id].append(control_id)
    out = {f.pk: FrameworkStatus(framework=f, counts={s: 0 for s in REQUIREMENT_STATES}) for f in frameworks}
    for pk, framework_id, mode in Requirement.objects.filter(framework__in=frameworks).values_list(
        "id", "framework_id", "mode"
    ):
        state = _state(mode, [controls[c] for c in mapped.get(pk, [])])
        out[framework_id].counts[state] += 1
    return out


def framework_status(
    framework: Framework, at: datetime | None = None, latest: dict[int, Result] | None = None
) -> FrameworkStatus:
    """Each requirement's state from the latest results (pass `latest` to share one read between frameworks)."""
    latest = latest_results(at) if latest is None else latest
    attested = attested_ids(at)
    status = FrameworkStatus(framework=framework, counts={s: 0 for s in REQUIREMENT_STATES})
    requirements = framework.requirements.prefetch_related(
        Prefetch("controls", queryset=Control.objects.select_related("owner").order_by("key"))
    ).order_by("position")
    for requirement in requirements:
        pairs = [(c, latest.get(c.pk)) for c in requirement.controls.all()]
        state = requirement_state(requirement, pairs, attested)
        status.counts[state] += 1
        status.requirements.append(RequirementStatus(requirement, state, pairs))
    return status


def frameworks_current() -> list[Framework]:
    current = library.library_current()
    if current is None:
        return []
    return list(Framework.objects.filter(library=current).order_by("position", "key"))


def framework_get(key: str) -> Framework:
    current = library.library_current()
    framework = Framework.objects.filter(library=current, key=key[:40]).first() if current else None
    if framework is None:
        raise NotFound("No such framework.")
    return framework


def control_get(key: str) -> Control:
    control = Control.objects.select_related("owner").filter(key=key[:60]).first()
    if control is None:
        raise NotFound("No such control.")
    return control


def result_get(result_id: Any) -> Result:
    try:
        pk = int(result_id)
    except (TypeError, ValueError):
        raise NotFound("No such result.") from None
    result = Result.objects.select_related("control", "evaluation").filter(pk=pk).first() if 0 < pk < 2**63 else None
    if result is None:
        raise NotFound("No such result.")
    return result


TREND_SQL = """
SELECT DISTINCT ON (f.key, day) f.key, (s.taken_at AT TIME ZONE %s)::date AS day, s.applicable, s.satisfied
  FROM compliance_frameworksnapshot s JOIN compliance_framework f ON f.id = s.framework_id
 WHERE s.taken_at >= %s {only}
 ORDER BY f.key, day, s.taken_at DESC, s.id DESC
"""


def trends(*, days: int = 30, key: str | None = None) -> dict[str, list[tuple[date, float]]]:
    """Readiness per day (the day's last snapshot) per framework key, across library versions: one query
    that reads at most `days` × snapshots-per-day rows per framework, however long the history."""
    since = timezone.now() - timedelta(days=days)
    zone = timezone.get_current_timezone_name()
    statement = TREND_SQL.format(only="AND f.key = %s" if key else "")
    out: dict[str, list[tuple[date, float]]] = defaultdict(list)
    params: list[Any] = [zone, since] + ([key] if key else [])
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        for fkey, day, applicable, satisfied in cursor.fetchall():
            out[fkey].append((day, round(100.0 * satisfied / applicable, 1) if applicable else 100.0))
    return dict(out)


def trend(framework: Framework, *, days: int = 90) -> list[tuple[date, float]]:
    return trends(days=days, key=framework.key).get(framework.key, [])


def failing_since(control_ids: list[int]) -> dict[int, datetime]:
    """For controls failing now: when the current run of fail/error results began."""
    since: dict[int, datetime] = {}
    for control_id in control_ids:
        last_good = (
            Result.objects.filter(control_id=control_id, status__in=["pass", "na"])
            .order_by("-evaluated_at")
            .values_list("evaluated_at", flat=True)
            .first()
        )
        bad = Result.objects.filter(control_id=control_id)
        if last_good is not None:
            bad = bad.filter(evaluated_at__gt=last_good)
        first = bad.order_by("evaluated_at").values_list("evaluated_at", flat=True).first()
        if first is not None:
            since[control_id] = first
    return since


@dataclass
class ControlRow:
    control: Control
    result: Result | None
    failing_since: datetime | None
    refs: list[str]


def control_rows(latest: dict[int, Result] | None = None) -> list[ControlRow]:
    """Every control with its latest result; failing first, then errors, then the rest by key."""
    latest = latest_results() if latest is None else latest
    current = library.library_current()
    refs: dict[int, list[str]] = defaultdict(list)
    if current is not None:
        for control_id, fkey, ref in (
            Requirement.controls.through.objects.filter(requirement__framework__library=current)
            .order_by("requirement__framework__position", "requirement__position")
            .values_list("control_id", "requirement__framework__key", "requirement__ref")
        ):
            refs[control_id].append(f"{fkey}:{ref}")
    controls = list(Control.objects.select_related("owner").order_by("key"))
    failing = [c.pk for c in controls if (r := latest.get(c.pk)) is not None and r.status in ("fail", "error")]
    since = failing_since(failing)
    rank = {"fail": 0, "error": 1, None: 2, "pass": 3, "na": 4}
    rows = [ControlRow(c, latest.get(c.pk), since.get(c.pk), refs.get(c.pk, [])) for c in controls]
    rows.sort(key=lambda row: (rank.get(row.result.status if row.result else None, 2), row.control.key))
    return rows


def control_history(control: Control, *, limit: int = 50, before: int | None = None) -> list[Result]:
    results = Result.objects.filter(control=control).defer("evidence").order_by("-evaluated_at", "-id")
    if before:
        results = results.filter(id__lt=before)
    return list(results[:limit])


def evaluations_recent(limit: int = 10) -> list[Evaluation]:
    return list(Evaluation.objects.select_related("job").order_by("-started_at")[:limit])


# The checks whose evidence names placements, databases, logs or tenants.
PLACEMENT_CHECKS = ("rls_forced", "runtime_roles", "schema_drift", "event_chains", "encryption_at_rest", "backups_rpo")


@dataclass
class TenantCheck:
    control: Control
    result: Result | None
    state: str  # pass / fail / error / not evaluated — for this tenant's placement only
    problems: list[dict[str, Any]]


def tenant_get(tenant_id: Any) -> Tenant:
    """The tenant, for the compliance page (readers: Viewer+ and Auditors; checked by the view)."""
    try:
        return Tenant.objects.select_related("placement").get(pk=tenant_id)
    except (Tenant.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such tenant.") from None


def _concerns(problem: dict[str, Any], tenant: Tenant) -> bool:
    placement = tenant.placement
    if placement is None:
        return problem.get("tenant") == tenant.slug
    return (
        f"(placement {placement.pk})" in str(problem.get("placement", ""))
        or problem.get("placement") == str(placement)
        or (bool(placement.db_name) and problem.get("database") == placement.db_name)
        or problem.get("log") == f"tenant:{tenant.pk}"
        or problem.get("tenant") == tenant.slug
        or problem.get("what") == f"placement {placement.pk}"
    )


def tenant_checks(tenant: Tenant) -> list[TenantCheck]:
    """The latest result of each placement-level check, narrowed to what concerns this tenant."""
    latest_ids = [r.pk for r in latest_results().values()]
    results = {r.control_id: r for r in Result.objects.filter(pk__in=latest_ids)}
    rows = []
    for control in Control.objects.filter(check_name__in=PLACEMENT_CHECKS).order_by("key"):
        result = results.get(control.pk)
        if result is None:
            rows.append(TenantCheck(control, None, "not evaluated", []))
            continue
        found = [p for p in (result.evidence.get("problems") or []) + (result.evidence.get("broken") or [])
                 if isinstance(p, dict) and _concerns(p, tenant)]  # fmt: skip
        state = (
            "error" if result.status == "error" else ("fail" if found else ("na" if result.status == "na" else "pass"))
        )
        rows.append(TenantCheck(control, result, state, found))
    return rows
