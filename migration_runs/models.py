"""A cross-tenant migration run and its one job per placement (see docs/migration_runs.md).

A *target* is one place Django migrations are recorded: the control plane
(`public`, every app), the template schema and template database (TENANT_APPS,
cloned by provisioning), and every Placement (pool schema, own schema,
dedicated database; TENANT_APPS).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class MigrationRun(models.Model):
    class Status(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
        CANCELLED = "cancelled", "Cancelled"
        REJECTED = "rejected", "Rejected"

    class Scope(models.TextChoices):
        ALL = "all", "All placements"
        SELECTED = "selected", "Chosen placements"
        RESUME = "resume", "Resume a previous run"

    FINISHED = (Status.COMPLETED, Status.COMPLETED_WITH_ERRORS, Status.CANCELLED, Status.REJECTED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.PositiveIntegerField(unique=True, help_text="Human-friendly run number.")
    status = models.CharField(max_length=24, choices=Status.choices, db_index=True)
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.ALL)
    canary_size = models.PositiveIntegerField(default=0, help_text="Placements migrated first; 0 = no canary.")
    resumed_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resumes")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=10, default="web", help_text="web, api or cli")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    cancelled_by_label = models.CharField(max_length=150, blank=True)
    # {"app.name": number of targets that need it} when the run was planned.
    plan_summary = models.JSONField(default=dict)
    # Targets per state when the run finished (lists of runs read this instead of counting every target).
    final_counts = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"run #{self.number}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class MigrationJob(models.Model):
    """One target of a run and its outcome. The engine job that carries it (jobs.Job, kind
    migration_runs.apply, grouped by run, batch 0 = canary, keyed by server) may carry several
    placements of one server, migrated one after another; a target with nothing to apply when the
    run was planned has no job at all."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # waiting for its turn (cap, canary, approval)
        QUEUED = "queued", "Queued"  # its job is on its way or migrating another placement first
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Nothing to apply"
        CANCELLED = "cancelled", "Cancelled"

    OPEN = (Status.PENDING, Status.QUEUED, Status.RUNNING)
    ENDED = (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.CANCELLED)

    class Kind(models.TextChoices):
        CONTROL = "control", "Control plane"
        TEMPLATE_SCHEMA = "template_schema", "Template schema"
        TEMPLATE_DATABASE = "template_database", "Template database"
        POOL = "pool", "Pool schema"
        SCHEMA = "schema", "Own schema"
        DATABASE = "database", "Dedicated database"

    run = models.ForeignKey(MigrationRun, on_delete=models.CASCADE, related_name="jobs")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.PROTECT, related_name="migration_jobs")
    target = models.CharField(max_length=80, help_text="control | template_schema | template_database | placement:<id>")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    placement = models.ForeignKey(
        "tenants.Placement", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    label = models.CharField(max_length=200)
    server = models.CharField(max_length=300, help_text="Database server (host:port) for the concurrency cap.")
    batch = models.PositiveSmallIntegerField(default=1, help_text="0 = canary, 1 = the rest.")
    plan = models.JSONField(default=list, help_text="Pending migrations when the run was planned (app.name).")
    applied = models.JSONField(default=list)
    # This target's own outcome (its job's state says how the job as a whole went).
    state = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "target"], name="migration_job_one_per_target")]

    def __str__(self) -> str:
        return f"{self.label} in {self.run}"

    @property
    def status(self) -> str:
        """The state as the screens show it: a pending target whose job is on its way is queued."""
        if self.state == self.Status.PENDING and self.job is not None and self.job.state in ("queued", "running"):
            return self.Status.QUEUED
        return self.state

    # From the carrying job (shared by the placements it carries).
    @property
    def attempts(self) -> int:
        return self.job.attempts if self.job is not None else 0

    @property
    def worker(self) -> str:
        return self.job.worker if self.job is not None else ""

    @property
    def lease_expires_at(self):
        return self.job.lease_expires_at if self.job is not None else None
