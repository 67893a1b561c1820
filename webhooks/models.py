"""Webhook endpoints (configured by Admins), deliveries and every attempt's outcome (the delivery log)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class WebhookEndpoint(models.Model):
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    # Webhook event types it receives (webhooks.dispatch.EVENT_TYPES); empty: every type.
    events = models.JSONField(default=list, blank=True)
    # Fernet tokens (tenants.crypto) of {"secret": …}; the previous secret still signs until it expires.
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_by_label = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return self.is_active and (not self.events or event_type in self.events)


class WebhookDelivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The webhook event's id (the control-plane event's uuid): receivers deduplicate on it, replays keep it.
    event_id = models.UUIDField(default=uuid.uuid4)
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    job_id = models.BigIntegerField(null=True, blank=True)
    # A replay goes with its original (SET_NULL would turn it into a second original of the same event).
    replay_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replays")
    replayed_by_label = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"], condition=Q(replay_of__isnull=True), name="webhook_delivery_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to endpoint {self.endpoint_id}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempt = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["delivery_id", "attempt", "id"]

    def __str__(self) -> str:
        return f"attempt {self.attempt} of delivery {self.delivery_id}"
