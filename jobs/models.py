"""One row per unit of long-running work, whatever its kind (see jobs/services.py).

A kind's code lives in a registered handler (jobs/registry.py); the row holds everything the
engine needs to run it safely with several workers, redeliveries and crashes: its state, the
attempt that holds it (the fencing token), the lease that proves that attempt's worker is alive,
when it may run again, its progress for live screens, its error, and where it belongs (a group,
a batch inside the group, a concurrency key shared with its kind's cap). Domain rows that need
more columns point at their job (sagas.SagaStep.job, migration_runs.MigrationJob.job,
events.ProjectionRebuild.job) rather than repeating these.

Transitions are made by jobs/services.py only, with conditional UPDATEs; never by save().
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Job(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"  # waiting for its time, a free slot, its batch, or a release
        QUEUED = "queued", "Queued"  # a message is on its way to a worker
        RUNNING = "running", "Running"  # a worker holds it until lease_expires_at (renewed by heartbeat)
        SUCCEEDED = "succeeded", "Succeeded"
        SKIPPED = "skipped", "Nothing to do"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    OPEN = (State.PENDING, State.QUEUED, State.RUNNING)
    FINISHED = (State.SUCCEEDED, State.SKIPPED, State.FAILED, State.CANCELLED)

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=64, help_text="The registered handler that runs it.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    group_type = models.CharField(max_length=32, blank=True, help_text="What it belongs to: saga, migration_run …")
    group_id = models.CharField(max_length=64, blank=True)
    batch = models.PositiveSmallIntegerField(default=0, help_text="Inside a group, lower batches run first.")
    concurrency_key = models.CharField(
        max_length=200, blank=True, help_text="Jobs of one kind with one key share the kind's cap (a database server)."
    )
    held = models.BooleanField(default=False, help_text="Waits for a release (e.g. a second Admin's approval).")
    payload = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    run_after = models.DateTimeField(null=True, blank=True, help_text="Not before (retry backoff, deferral).")
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Running time of the last attempt.")
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(null=True, blank=True)
    progress_note = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=254, blank=True)
    correlation_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sweeper: running jobs whose lease ran out; queued jobs whose message may be lost.
            models.Index(fields=["state", "lease_expires_at"], name="jobs_state_lease"),
            models.Index(fields=["state", "queued_at"], name="jobs_state_queued"),
            # Dispatch and the group screens: open jobs of a group by batch.
            models.Index(fields=["group_type", "group_id", "state", "batch"], name="jobs_group_state"),
            # Caps: queued/running jobs of a kind per key.
            models.Index(fields=["kind", "concurrency_key", "state"], name="jobs_kind_key_state"),
            models.Index(fields=["kind", "-created_at"], name="jobs_kind_created"),
            models.Index(fields=["run_after"], name="jobs_pending_due", condition=Q(state="pending", held=False)),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "queued", "running", "succeeded", "skipped", "failed", "cancelled"]),
                name="jobs_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN

    @property
    def is_finished(self) -> bool:
        return self.state in self.FINISHED

    @property
    def percent(self) -> int | None:
        """Progress as a whole percentage, or None when the total is unknown."""
        if not self.progress_total:
            return None
        return max(0, min(100, int(100 * self.progress_done / self.progress_total)))

    @property
    def group(self) -> tuple[str, str] | None:
        return (self.group_type, self.group_id) if self.group_type else None
