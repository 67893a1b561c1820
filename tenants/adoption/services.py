"""The import's entry point and its job kind, `tenants.django_tenants_import` (one job per tenant).

`django_tenants_import(url=…)` reads the source and plans every tenant (source.py); a dry run stops
there. Otherwise it creates one job per tenant to import, in one group, and runs them in this
process through the job engine (a worker that claims one first runs it instead; the claims make
that harmless), then waits for the group to settle. Each job re-reads its tenant's plan from the
source, so a retried or redelivered job finds the tenant already imported (and skips), or the
marked schema of its interrupted attempt (and redoes it), and imports it (copy.py).

The source's URL, credentials included, travels in the job's payload encrypted with
FIELD_ENCRYPTION_KEY (tenants/crypto.py), like a dedicated placement's credentials, and is removed
from the payload when the job ends. So the Jobs screen offers no retry for this kind: run the command
again (it skips what was imported).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from django.db import IntegrityError

from core.actors import Actor, SystemActor, actor_label
from jobs.models import Job
from jobs.registry import JobContext, JobHandler, PermanentError, register
from jobs.services import job_create, job_execute, jobs_work_inline
from tenants.adoption.copy import tenant_import_one
from tenants.adoption.source import (
    AdoptionError,
    ImportReport,
    SourceTables,
    TenantPlan,
    discover_tables,
    is_control_plane_database,
    plan_import,
    refuse,
    source_connect,
    source_label,
)
from tenants.crypto import decrypt_json, encrypt_json
from tenants.models import TenantImport

COMMAND = SystemActor("manage.py import_django_tenants")
KIND = "tenants.django_tenants_import"
GROUP = "django_tenants_import"
# Errors that a second attempt would meet again: the source's data or layout, not the network.
PERMANENT = (psycopg.errors.IntegrityError, psycopg.errors.DataError, psycopg.errors.ProgrammingError, IntegrityError)


def _tables_payload(tables: SourceTables) -> dict[str, Any]:
    return {
        "tenant_table": list(tables.tenant_table),
        "tenant_key": tables.tenant_key,
        "domain_table": list(tables.domain_table),
        "has_name": tables.has_name,
    }


def _tables_from(payload: dict[str, Any]) -> SourceTables:
    t, d = payload["tenant_table"], payload["domain_table"]
    return SourceTables((t[0], t[1]), payload["tenant_key"], (d[0], d[1]), bool(payload["has_name"]))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@register
class ImportTenantJob(JobHandler):
    """Import one django-tenants tenant (tenants/adoption/copy.py); safe to run again."""

    kind = KIND
    title = "Import a django-tenants tenant"
    max_attempts = 3
    lease_seconds = 600.0
    operator_actions = False  # a retry would need the source's credentials, dropped when the job ends

    def run(self, ctx: JobContext) -> dict[str, Any]:
        payload = ctx.payload
        if not payload.get("source"):
            raise PermanentError("The source's credentials are gone; run import_django_tenants again.")
        source = payload["source_label"]
        done = TenantImport.objects.filter(source_database=source, source_schema=payload["schema"]).first()
        if done is not None:  # by an earlier attempt of this job, whose worker died before recording it
            return {"tenant_id": str(done.tenant_id), "slug": "", "schema": "", "rows": done.tables}
        url = decrypt_json(payload["source"])["url"]
        with source_connect(url) as src:
            plans = plan_import(src, _tables_from(payload["tables"]), source=source,
                                same_database=payload["same_database"], only=payload["schema"])  # fmt: skip
            if not plans:
                raise PermanentError(f"The django-tenants tenant of schema {payload['schema']} is gone.")
            plan = plans[0]
            if plan.action == "skip":
                return {"skipped": plan.reason}
            if plan.action == "refuse":
                raise PermanentError(plan.reason)
            try:
                tenant = tenant_import_one(src, plan, source=source, actor=SystemActor(payload["actor"]),
                                           progress=lambda done, total: ctx.progress(done, total))  # fmt: skip
            except (AdoptionError, *PERMANENT) as exc:
                raise PermanentError(_first_line(exc)) from exc
        return {"tenant_id": str(tenant.pk), "slug": plan.slug, "schema": plan.target_schema, "rows": plan.copied}

    def _forget_source(self, job: Job) -> None:
        Job.objects.filter(pk=job.pk).update(payload={k: v for k, v in job.payload.items() if k != "source"})

    def on_succeeded(self, job: Job, result: dict[str, Any]) -> Job | None:
        self._forget_source(job)
        return None

    def on_failed(self, job: Job, error: str) -> None:
        self._forget_source(job)


def _outcome(plan: TenantPlan, job: Job, report: ImportReport) -> str:
    if job.state == Job.State.SUCCEEDED and job.result.get("tenant_id"):
        report.imported.append(job.result["tenant_id"])
        return f"imported {plan.describe()}"
    if job.state == Job.State.SUCCEEDED:
        plan.action, plan.reason = "skip", job.result.get("skipped", "")
    else:
        refuse(plan, f"failed and nothing of it was kept: {(job.error or job.state).splitlines()[0]}")
        report.failed.append(plan)
    return plan.describe()


def django_tenants_import(
    *,
    url: str,
    actor: Actor = COMMAND,
    tenant_table: str = "",
    domain_table: str = "",
    dry_run: bool = False,
    progress: Callable[[str], Any] = lambda line: None,
    timeout: float = 7 * 24 * 3600.0,
    fault: dict | None = None,
) -> ImportReport:
    """Import every tenant of a django-tenants database (see tenants/adoption/__init__.py). Raises
    AdoptionError (one sentence) when the source cannot be read as a django-tenants deployment; a
    tenant that cannot be imported is reported refused (or failed) and the others still are."""
    with source_connect(url) as src:
        tables = discover_tables(src, tenant_table=tenant_table, domain_table=domain_table)
        same = is_control_plane_database(src)
        source = source_label(src)
        plans = plan_import(src, tables, source=source, same_database=same)
    where = "this control plane's own database" if same else "another database"
    progress(f"django-tenants tables {' and '.join(tables.labels)} in {source} ({where})")
    report = ImportReport(source=source, same_database=same, tables=tables, plans=plans)
    todo = [p for p in plans if p.action == "import"]
    for plan in plans:
        if dry_run or plan.action != "import":
            progress(("would import " if plan.action == "import" else "") + plan.describe())
    if dry_run or not todo:
        return report
    run_id = str(uuid.uuid4())
    secret = encrypt_json({"url": url})
    base = {"source": secret, "source_label": source, "same_database": same, "tables": _tables_payload(tables),
            "actor": actor_label(actor), "run": run_id}  # fmt: skip
    if fault:
        base["_fault"] = fault  # honoured only under test settings (tests/support/faults.py)
    jobs = [
        job_create(kind=KIND, payload={**base, "schema": plan.schema}, group=(GROUP, run_id), actor=actor, send=False)
        for plan in todo
    ]
    told: set[int] = set()

    def tell(plan: TenantPlan, job: Job) -> None:
        job.refresh_from_db()
        if job.pk not in told and job.state in Job.FINISHED:
            told.add(job.pk)
            progress(_outcome(plan, job, report))

    for plan, job in zip(todo, jobs, strict=True):
        job_execute(job_id=job.pk)  # in this process; a worker that claimed it first runs it instead
        tell(plan, job)
    jobs_work_inline(group=(GROUP, run_id), timeout=timeout)  # retries, and jobs a worker holds
    for plan, job in zip(todo, jobs, strict=True):
        tell(plan, job)
    return report
