"""Control-plane models owned by saas_admin: per-operator API tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class TokenScope(models.TextChoices):
    """What a token may do, never more than its owner's current role: read (Viewer), write (Operator),
    admin (Admin)."""

    READ = "read", "Read"
    WRITE = "write", "Read and write"
    ADMIN = "admin", "Admin"


class ApiToken(models.Model):
    """A personal API token. Only a SHA-256 hash and a short display prefix are stored.

    The plaintext is shown once, when the token is created. A token acts with
    its owner's current role, so demoting or deactivating the operator takes
    effect on the next API call.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=TokenScope.choices, default=TokenScope.READ)
    prefix = models.CharField(max_length=16, help_text="First characters of the token, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.is_expired:
            return "expired"
        return "active"


# Sign-in, sign-out and failed sign-in receivers (audit trail). Imported here so
# they are connected whenever the app registry loads saas_admin.
from saas_admin import auth_audit  # noqa: E402, F401
