"""A tenant's own event log, inside its placement (pool schema, own schema or dedicated database).

Same columns, triggers, grants and hash chain as the control-plane log
(events/ddl.py), plus a non-null `tenant_id` under FORCE'd RLS like every
data-plane table. A dedicated tenant's events, snapshots and subject keys
never leave its database.
"""

from __future__ import annotations

from django.db import models

from core.tenancy import current_tenant_id
from events.models import CheckpointBase, EventBase, SnapshotBase, SubjectKeyBase


class TenantEvent(EventBase):
    # Append-only: tenant deletion purges it through events.tenantlog.purge (as the owner), not a DELETE.
    append_only = True
    tenant_id = models.UUIDField(default=current_tenant_id, editable=False)

    class Meta:
        db_table = "tenantlog_event"
        ordering = ["-event_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "aggregate_type", "aggregate_id", "version"], name="tenantlog_event_stream_version"
            )
        ]
        indexes = [
            models.Index(fields=["tenant_id", "event_id"], name="tenantlog_event_tenant"),
            models.Index(fields=["tenant_id", "event_type", "event_id"], name="tenantlog_event_type"),
            models.Index(fields=["tenant_id", "aggregate_type", "event_id"], name="tenantlog_event_aggtype"),
            models.Index(fields=["tenant_id", "aggregate_id", "event_id"], name="tenantlog_event_aggid"),
            # Time-bounded pages are ordered by (occurred_at, event_id) (events/selectors.py).
            models.Index(fields=["tenant_id", "occurred_at", "event_id"], name="tenantlog_event_time_id"),
            models.Index(
                fields=["correlation_id"], name="tenantlog_event_corr", condition=models.Q(correlation_id__isnull=False)
            ),
        ]


class TenantSnapshot(SnapshotBase):
    tenant_id = models.UUIDField(default=current_tenant_id, editable=False)

    class Meta:
        db_table = "tenantlog_snapshot"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "aggregate_type", "aggregate_id", "version", "reducer_version"],
                name="tenantlog_snapshot_unique",
            )
        ]
        indexes = [
            models.Index(
                fields=["tenant_id", "aggregate_type", "aggregate_id", "occurred_at"], name="tenantlog_snap_at"
            )
        ]

    def __str__(self) -> str:
        return f"{self.aggregate_type}/{self.aggregate_id} @v{self.version}"


class TenantCheckpoint(CheckpointBase):
    tenant_id = models.UUIDField(default=current_tenant_id, editable=False)

    class Meta:
        db_table = "tenantlog_checkpoint"
        constraints = [models.UniqueConstraint(fields=["tenant_id", "name"], name="tenantlog_checkpoint_name")]

    def __str__(self) -> str:
        return f"{self.name} at ({self.tx_id}, {self.event_id})"


class TenantSubjectKey(SubjectKeyBase):
    tenant_id = models.UUIDField(default=current_tenant_id, editable=False)

    class Meta:
        db_table = "tenantlog_subjectkey"
        constraints = [models.UniqueConstraint(fields=["tenant_id", "subject_id"], name="tenantlog_subjectkey_subject")]

    def __str__(self) -> str:
        return f"key of {self.subject_id}"
