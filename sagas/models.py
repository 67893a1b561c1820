"""Persistent sagas: one `Saga` row per run, one `SagaStep` row per step.

State lives in the database so any worker can pick a saga up where a dead
one left it. Each step's action and compensation run as jobs of the job engine
(jobs/), which owns attempts, leases, retries and the sweeper. Transitions are
made by services.py only (under a row lock on the saga), never by save().
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class SagaState(models.TextChoices):
    STARTED = "started", "Started"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    COMPENSATING = "compensating", "Compensating"
    COMPENSATED = "compensated", "Compensated"
    FAILED = "failed", "Failed"


class StepState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    COMPENSATING = "compensating", "Compensating"
    COMPENSATED = "compensated", "Compensated"


ACTIVE_SAGA_STATES = (SagaState.STARTED, SagaState.RUNNING, SagaState.COMPENSATING)
TERMINAL_SAGA_STATES = (SagaState.COMPLETED, SagaState.COMPENSATED, SagaState.FAILED)


class Saga(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    saga_type = models.CharField(max_length=64, db_index=True)
    state = models.CharField(max_length=16, choices=SagaState.choices, default=SagaState.STARTED)
    # A plain uuid, not a foreign key: compensation deletes the tenant row, the saga stays as the record of why.
    tenant_id = models.UUIDField(null=True, blank=True, db_index=True)
    tenant_label = models.CharField(max_length=100, blank=True, help_text="The tenant's slug at the time.")
    correlation_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    # Idempotency key: a second start with the same key returns the first saga (double submits, retried API calls).
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    input = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="Outputs of completed steps.")
    error = models.TextField(blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "created_at"]), models.Index(fields=["saga_type", "state"])]

    def __str__(self) -> str:
        return f"{self.saga_type} {self.id} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_SAGA_STATES

    @property
    def duration(self):
        end = self.finished_at or self.updated_at
        return end - self.created_at if end else None


class SagaStep(models.Model):
    """One step of a saga: its business state and output. Running it (attempts, lease, retries,
    backoff) is the job engine's: `job` runs the action, `compensation_job` the undo."""

    saga = models.ForeignKey(Saga, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=StepState.choices, default=StepState.PENDING)
    job = models.OneToOneField("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="saga_step")
    compensation_job = models.OneToOneField(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="compensated_saga_step"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    compensated_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    compensation_error = models.TextField(blank=True)
    output = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["saga", "index"]
        constraints = [models.UniqueConstraint(fields=["saga", "index"], name="sagas_step_unique_index")]

    def __str__(self) -> str:
        return f"{self.saga_id} #{self.index} {self.name} ({self.state})"

    @property
    def attempts(self) -> int:
        return self.job.attempts if self.job is not None else 0

    @property
    def max_attempts(self) -> int:
        return self.job.max_attempts if self.job is not None else 0

    @property
    def compensate_attempts(self) -> int:
        return self.compensation_job.attempts if self.compensation_job is not None else 0

    @property
    def lease_expires_at(self):
        return self.job.lease_expires_at if self.job is not None else None

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None
