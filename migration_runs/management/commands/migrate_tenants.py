"""python manage.py migrate_tenants [--placement …] [--dry-run] [--no-wait] [--canary N]

The same run the Migrations screen starts (migration_runs): one Celery
job per placement with pending migrations, a concurrency cap per database
server. Waits by default and prints progress; the last line is the run id.
Exits 1 when a placement failed, 2 on bad input.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from migration_runs import plans, selectors, services
from migration_runs.models import MigrationRun


def resolve_targets(names: list[str]) -> list[str]:
    """Accept a target key (control, template_schema, template_database, placement:<id>), a placement id,
    a schema name or a dedicated database name."""
    found = plans.targets()
    keys: list[str] = []
    for name in names:
        match = [
            t
            for t in found
            if name in (t.key, t.label, str(t.placement_id)) or (t.kind != "database" and name == t.schema)
        ]
        if not match:
            raise CommandError(f"Unknown placement “{name}”.", returncode=2)
        keys.extend(t.key for t in match if t.key not in keys)
    return keys


class Command(BaseCommand):
    help = "Apply pending migrations across tenant placements (control plane, templates, pools, schemas, databases)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--placement",
            action="append",
            default=[],
            metavar="NAME",
            help="Only this placement (repeatable): key, id, schema or database name.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Print the plan and the SQL; change nothing.")
        parser.add_argument("--no-wait", action="store_true", help="Start the run and print its id.")
        parser.add_argument(
            "--canary",
            type=int,
            default=0,
            metavar="N",
            help="Migrate N placements first; the rest only if none of them fails.",
        )
        parser.add_argument(
            "--timeout", type=float, default=0, help="Stop waiting after this many seconds (0 = no limit)."
        )

    def handle(self, *args, **options):
        if options["canary"] < 0:
            raise CommandError("--canary must be 0 or more.", returncode=2)
        keys = resolve_targets(options["placement"]) if options["placement"] else None
        try:
            if options["dry_run"]:
                return self._dry_run(keys)
            run = services.run_start(actor=services.CLI, target_keys=keys, canary_size=options["canary"], via="cli")
        except ApplicationError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        if options["no_wait"]:
            self.stdout.write(str(run.pk))
            return
        self._wait(run, options["timeout"])

    def _dry_run(self, keys):
        plan = services.dry_run(target_keys=keys)
        work = plan.with_work
        self.stdout.write(f"{len(work)} of {len(plan.statuses)} placements have migrations to apply.")
        for row in work:
            self.stdout.write(f"  {row.target.label}: {', '.join(plans.fmt(k) for k in row.pending)}")
        for name, text in plan.sql.items():
            self.stdout.write(f"\n-- {name}\n{text}")

    def _wait(self, run: MigrationRun, timeout: float) -> None:
        deadline = time.monotonic() + timeout if timeout else None
        last = None
        while True:
            run.refresh_from_db()
            p = selectors.run_progress(run)
            line = (
                f"run #{run.number} {run.status}: {p.finished}/{p.with_work} finished, "
                f"{p.counts['failed']} failed, {p.open} open, {p.counts['skipped']} nothing to apply"
            )
            if line != last:
                self.stdout.write(line)
                last = line
            if run.is_finished:
                break
            if deadline and time.monotonic() > deadline:
                self.stderr.write(f"Still running after {timeout:g} s; follow it on the Migrations screen.")
                self.stdout.write(str(run.pk))
                raise SystemExit(3)
            time.sleep(0.2)
        for job in run.jobs.filter(state="failed"):
            self.stderr.write(f"FAILED {job.label}: {job.error.splitlines()[0] if job.error else ''}")
        self.stdout.write(str(run.pk))
        if run.status != MigrationRun.Status.COMPLETED:
            raise SystemExit(1)
