"""Checks about change: migration runs were dry-run and approved; no placement drifted from the plan."""

from __future__ import annotations

from typing import Any

from django.db import connections

from compliance.checks.isolation import data_plane_tables, placements_by_database
from compliance.checks.registry import Outcome, check
from events.models import Event
from migration_runs.models import MigrationRun
from tenants.databases import register_placement
from tenants.models import MigrationState, Placement
from tenants.placements import expected_migrations, template_schema


@check("change_management")
def change_management() -> Outcome:
    """Proves every completed cross-tenant migration run was preceded by a dry run (a `MigrationDryRun`
    event in the control-plane log after the previous run started and before this one), and that every
    run someone approved (four-eyes) was approved by someone other than who triggered it.

    Evidence: each completed run with its trigger, approver and the dry run that preceded it."""
    runs = list(
        MigrationRun.objects.order_by("created_at").values(
            "id", "number", "status", "created_at", "created_by_id", "created_by_label", "approved_by_id", "approved_at"
        )
    )
    dry_runs = list(
        Event.objects.filter(event_type="MigrationDryRun")
        .order_by("occurred_at")
        .values_list("event_id", "occurred_at")
    )
    done = (MigrationRun.Status.COMPLETED, MigrationRun.Status.COMPLETED_WITH_ERRORS)
    problems, evidence = [], []
    previous = None
    for run in runs:
        window = [e for e, at in dry_runs if (previous is None or at > previous) and at <= run["created_at"]]
        previous = run["created_at"]
        if run["status"] not in done:
            continue
        entry = {
            "run": run["number"],
            "status": run["status"],
            "triggered_by": run["created_by_label"],
            "approved": run["approved_at"] is not None,
            "dry_run_event": window[-1] if window else None,
        }
        evidence.append(entry)
        if not window:
            problems.append({"run": run["number"], "problem": "no dry run before it"})
        if run["approved_by_id"] is not None and run["approved_by_id"] == run["created_by_id"]:
            problems.append({"run": run["number"], "problem": "approved by the operator who triggered it"})
    return Outcome.judged(
        problems,
        f"{len(evidence)} completed migration runs each had a dry run and independent approval where required.",
        "{n} change-management gaps: " + "; ".join(f"run #{p['run']} {p['problem']}" for p in problems[:3]) + ".",
        runs=evidence,
    )


SHAPE_QUERY = """
SELECT n.nspname,
       md5(string_agg(c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull,
                      ',' ORDER BY c.relname, a.attname))
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%s::text[]) AND c.relname = ANY(%s::text[]) AND c.relkind IN ('r', 'p')
   AND a.attnum > 0 AND NOT a.attisdropped
 GROUP BY n.nspname
"""


def _shapes(alias: str, schemas: list[str], tables: list[str]) -> dict[str, str]:
    with connections[alias].cursor() as cursor:
        cursor.execute(SHAPE_QUERY, [schemas, tables])
        return dict(cursor.fetchall())


@check("schema_drift")
def schema_drift() -> Outcome:
    """Proves no placement drifted: each one's applied migrations (as last verified by the migration-state
    job) equal the expected plan with nothing pending or unknown, none is unrecorded, unreadable or
    flagged as drifted, and each one's data-plane tables have exactly the columns (names, types,
    nullability) of the template schema's.

    Evidence: placements checked and each (placement, problem)."""
    expected = sorted(f"{app}.{name}" for app, name in expected_migrations())
    problems: list[dict[str, Any]] = []
    states = {s.placement_id: s for s in MigrationState.objects.all()}
    placements = list(Placement.objects.order_by("id"))
    for placement in placements:
        label = str(placement)
        state = states.get(placement.pk)
        if state is None:
            problems.append({"placement": label, "problem": "migration state never recorded"})
            continue
        if state.drift:
            problems.append({"placement": label, "problem": state.drift})
        if state.error:
            problems.append({"placement": label, "problem": f"unreadable: {state.error}"})
        if state.missing:
            problems.append({"placement": label, "problem": "no migration table"})
        elif sorted(state.applied) != expected:
            pending = sorted(set(expected) - set(state.applied))
            unknown = sorted(set(state.applied) - set(expected))
            problems.append({"placement": label, "problem": f"pending {pending[:3]}, unknown {unknown[:3]}"})
    tables = data_plane_tables()
    local, dedicated = placements_by_database()
    local.pop("public", None)
    shapes = _shapes("default", list(local), tables)
    reference = shapes.get(template_schema())
    for schema, label in local.items():
        if schema != template_schema() and shapes.get(schema) != reference:
            problems.append({"placement": label, "problem": "tables differ from the template schema"})
    for placement in dedicated:
        try:
            found = _shapes(register_placement(placement), [placement.schema_name], tables).get(placement.schema_name)
        except Exception as exc:  # reported as a problem of that placement
            problems.append({"placement": str(placement), "problem": f"unreachable: {exc}"[:300]})
            continue
        if found != reference:
            problems.append({"placement": str(placement), "problem": "tables differ from the template schema"})
    return Outcome.judged(
        problems,
        f"{len(placements)} placements match the expected migrations and the template's tables.",
        "{n} drift problems: " + "; ".join(f"{p['placement']}: {p['problem']}" for p in problems[:3]) + ".",
        placements=len(placements),
        expected_migrations=len(expected),
        template_shape=reference,
    )
