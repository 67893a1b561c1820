"""The audit trail's one model (the table keeps its first name, compliance_auditentry)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """One operator action that changed something: who, what, when, from where.

    Append-only: the app role may only SELECT and INSERT (compliance migration 0001 revoked the rest).
    """

    occurred_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=254, help_text="Username at the time, kept if the user is deleted.")
    action = models.CharField(max_length=100, db_index=True, help_text="An audit.actions.AuditAction value.")
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=100, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        db_table = "compliance_auditentry"  # created by the compliance app before the audit app existed
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="compliance__target__09d8bf_idx"),
            # Keyset pagination of the audit trail walks (occurred_at, id) newest first.
            models.Index(fields=["-occurred_at", "-id"], name="audit_keyset_idx"),
            models.Index(fields=["actor_label", "-occurred_at"], name="audit_actor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"
