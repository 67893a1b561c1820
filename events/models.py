"""The control-plane event log and the bookkeeping around every event log.

The abstract bases are shared with the tenant logs (events/tenantlog): every
log has the same columns, triggers and grants (events/ddl.py), whichever
placement it lives in. Rows are written only through events.store.EventStore
(raw SQL; the database fills tx_id, prev_hash, hash and, when absent,
occurred_at).
"""

from __future__ import annotations

import uuid

from django.db import models


class XID8Field(models.BigIntegerField):
    """PostgreSQL `xid8` (a 64-bit transaction id), read as an int."""

    def db_type(self, connection) -> str:
        return "xid8"

    def from_db_value(self, value, expression, connection):
        return None if value is None else int(value)


class EventBase(models.Model):
    event_id = models.BigAutoField(primary_key=True, help_text="Global order inside this log.")
    event_uuid = models.UUIDField(default=uuid.uuid4, unique=True, help_text="Stable id across logs and copies.")
    aggregate_type = models.CharField(max_length=100)
    aggregate_id = models.CharField(max_length=200)
    version = models.PositiveIntegerField(help_text="Position inside the aggregate's stream, from 1.")
    event_type = models.CharField(max_length=100)
    event_version = models.PositiveSmallIntegerField(default=1, help_text="Schema version of event_data.")
    event_data = models.JSONField(default=dict)
    event_metadata = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    causation_id = models.UUIDField(null=True, blank=True, help_text="event_uuid of the event that caused this one.")
    correlation_id = models.UUIDField(null=True, blank=True)
    tx_id = XID8Field(editable=False, help_text="pg_current_xact_id() of the appending transaction.")
    prev_hash = models.BinaryField(null=True, editable=False)
    hash = models.BinaryField(editable=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"#{self.event_id} {self.aggregate_type}/{self.aggregate_id} v{self.version} {self.event_type}"

    @property
    def hash_hex(self) -> str:
        return bytes(self.hash).hex() if self.hash else ""

    @property
    def prev_hash_hex(self) -> str:
        return bytes(self.prev_hash).hex() if self.prev_hash else ""


class Event(EventBase):
    """The control plane's own log in `public`: tenant lifecycle, operator actions, sagas, migration runs."""

    tenant_id = models.UUIDField(null=True, blank=True, help_text="The tenant this event concerns, if any.")

    class Meta:
        ordering = ["-event_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_type", "aggregate_id", "version"], name="events_event_stream_version"
            )
        ]
        # The viewer filters on each of these columns (events/selectors.py event_page_queryset): one index
        # per filter, each ending in the page order, so a page is a short index range whatever the value's
        # frequency; combined filters start from the most selective one (tests/test_viewer_indexes.py).
        indexes = [
            models.Index(fields=["tenant_id", "event_id"], name="events_event_tenant"),
            # Pairs of filters whose two values can each be common while never occurring together (a
            # tenant and an event type it never had): one index range instead of walking one value's rows.
            models.Index(fields=["tenant_id", "event_type", "event_id"], name="events_event_tenant_type"),
            models.Index(fields=["tenant_id", "aggregate_type", "event_id"], name="events_event_tenant_aggtype"),
            models.Index(fields=["aggregate_id", "event_type", "event_id"], name="events_event_aggid_type"),
            models.Index(fields=["event_type", "event_id"], name="events_event_type"),
            models.Index(fields=["aggregate_type", "event_id"], name="events_event_aggtype"),
            models.Index(fields=["aggregate_id", "event_id"], name="events_event_aggid"),
            # Time-bounded pages are ordered by (occurred_at, event_id).
            models.Index(fields=["occurred_at", "event_id"], name="events_event_time_id"),
            models.Index(
                fields=["correlation_id", "event_id"],
                name="events_event_corr_id",
                condition=models.Q(correlation_id__isnull=False),
            ),
            models.Index(
                fields=["causation_id"], name="events_event_causation", condition=models.Q(causation_id__isnull=False)
            ),
        ]


class SnapshotBase(models.Model):
    """An aggregate's folded state after `version`; purely derived, so it may be dropped and rebuilt."""

    aggregate_type = models.CharField(max_length=100)
    aggregate_id = models.CharField(max_length=200)
    version = models.PositiveIntegerField()
    occurred_at = models.DateTimeField(help_text="occurred_at of the last event folded in.")
    state = models.JSONField()
    reducer_version = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class Snapshot(SnapshotBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_type", "aggregate_id", "version", "reducer_version"], name="events_snapshot_unique"
            )
        ]
        indexes = [models.Index(fields=["aggregate_type", "aggregate_id", "occurred_at"], name="events_snapshot_at")]

    def __str__(self) -> str:
        return f"{self.aggregate_type}/{self.aggregate_id} @v{self.version}"


class CheckpointBase(models.Model):
    """Durable cursor of an async consumer: the last (tx_id, event_id) it processed."""

    name = models.CharField(max_length=100)
    tx_id = models.BigIntegerField(default=0)
    event_id = models.BigIntegerField(default=0)
    processed = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Checkpoint(CheckpointBase):
    class Meta:
        constraints = [models.UniqueConstraint(fields=["name"], name="events_checkpoint_name")]

    def __str__(self) -> str:
        return f"{self.name} at ({self.tx_id}, {self.event_id})"


class SubjectKeyBase(models.Model):
    """Per-data-subject key for personal data inside events. Deleting it crypto-shreds every copy."""

    subject_id = models.CharField(max_length=200)
    key = models.BinaryField(
        null=True, help_text="Fernet key, itself encrypted with FIELD_ENCRYPTION_KEY; NULL once erased."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    erasure_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        abstract = True


class SubjectKey(SubjectKeyBase):
    class Meta:
        constraints = [models.UniqueConstraint(fields=["subject_id"], name="events_subjectkey_subject")]

    def __str__(self) -> str:
        return f"key of {self.subject_id}"


class ProjectionRebuild(models.Model):
    """A background rebuild of one projection; it runs as a job (kind events.projection_rebuild),
    which holds its state, attempts and progress for the operator."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    _STATUS_OF_JOB = {
        "pending": Status.PENDING,
        "queued": Status.PENDING,
        "running": Status.RUNNING,
        "succeeded": Status.COMPLETED,
        "skipped": Status.COMPLETED,
        "failed": Status.FAILED,
        "cancelled": Status.FAILED,
    }

    projection = models.CharField(max_length=100)
    tenant_id = models.UUIDField(null=True, blank=True)
    job = models.OneToOneField("jobs.Job", null=True, on_delete=models.SET_NULL, related_name="projection_rebuild")
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"rebuild {self.projection} ({self.status})"

    @property
    def status(self) -> str:
        return self._STATUS_OF_JOB.get(self.job.state, self.Status.FAILED) if self.job else self.Status.FAILED

    @property
    def processed(self) -> int:
        return self.job.progress_done if self.job else 0

    @property
    def total(self) -> int:
        return (self.job.progress_total or 0) if self.job else 0

    @property
    def error(self) -> str:
        return self.job.error if self.job and self.status == self.Status.FAILED else ""

    @property
    def percent(self) -> int:
        if self.status == self.Status.COMPLETED:
            return 100
        return min(99, int(self.processed * 100 / self.total)) if self.total else 0


class EventTypeStat(models.Model):
    """Async projection of the control-plane log: how many events of each type, and the latest."""

    aggregate_type = models.CharField(max_length=100)
    event_type = models.CharField(max_length=100)
    count = models.BigIntegerField(default=0)
    last_event_id = models.BigIntegerField(default=0)
    last_occurred_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["aggregate_type", "event_type"], name="events_typestat_unique")]

    def __str__(self) -> str:
        return f"{self.aggregate_type}/{self.event_type}: {self.count}"
