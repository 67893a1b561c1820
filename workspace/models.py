"""The tenant-facing sample domain (TENANT_APPS): members and ledger accounts.

These tables exist in every placement (pool schema, own schema, dedicated
database) and carry a non-null `tenant_id` protected by FORCE'd RLS (see
core/rls.py). Outside a tenant_context they show zero rows.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, check_password, make_password
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models

from core.tenancy import current_tenant_id


class TenantScoped(models.Model):
    # Filled from the open tenant_context; RLS's WITH CHECK refuses any other value.
    tenant_id = models.UUIDField(default=current_tenant_id, editable=False)

    class Meta:
        abstract = True


class Member(TenantScoped):
    """A person who signs in to the tenant's workspace (not a Django user, not an operator)."""

    name = models.CharField(max_length=200)
    email = models.EmailField()
    password = models.CharField(max_length=128, blank=True)
    is_admin = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when an admin (or provisioning, for the owner) invited them by email. Until they follow a
    # set-password link their password is unusable: that is what "invitation pending" means.
    invited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "email"], name="member_unique_email")]
        indexes = [models.Index(fields=["tenant_id", "name"], name="member_tenant_name")]

    def __str__(self) -> str:
        return self.name

    def set_password(self, raw: str | None) -> None:
        self.password = make_password(raw)

    def check_password(self, raw: str) -> bool:
        return bool(self.password) and check_password(raw, self.password)

    @property
    def invitation_pending(self) -> bool:
        return not self.password or self.password.startswith(UNUSABLE_PASSWORD_PREFIX)


class Account(TenantScoped):
    """A ledger account. Balances will become an event-sourced projection (events app)."""

    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, default="EUR")
    balance = models.DecimalField(max_digits=18, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["tenant_id", "name"], name="account_tenant_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency})"


class MemberSession(AbstractBaseSession):
    """A signed-in member's session, kept in the tenant's own placement (workspace.sessions).

    RLS scopes it like every data-plane row: a session key copied to another tenant's host finds
    nothing, and requests on tenant hosts never need the control plane's session table."""

    tenant_id = models.UUIDField(default=current_tenant_id, editable=False)
    # The signed-in member (copied from the session data on save), so removing a member or resetting
    # their password can end every session they have without decoding each one.
    member_id = models.BigIntegerField(null=True, blank=True)

    class Meta(AbstractBaseSession.Meta):  # type: ignore[name-defined]  # the stubs do not declare it
        indexes = [
            models.Index(fields=["tenant_id", "expire_date"], name="membersession_tenant_expiry"),
            models.Index(fields=["tenant_id", "member_id"], name="membersession_member"),
        ]

    @classmethod
    def get_session_store_class(cls):
        # At call time: workspace.sessions imports this module.
        from workspace.sessions import SessionStore

        return SessionStore


class PrivacyIntake(TenantScoped):
    """A data-subject request a workspace admin filed from the workspace (docs/privacy.md).

    Requests on tenant hosts may not touch control-plane tables (docs/accounts.md), so the admin's
    request waits here, in the tenant's placement; the control plane's sweeper (privacy.intake) opens
    the real request, wipes the email from this row and copies the status and a download link back."""

    kind = models.CharField(max_length=10, default="access")
    email = models.EmailField(blank=True, help_text="Emptied once the control plane has taken the request.")
    requested_by_member = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    picked_up_at = models.DateTimeField(null=True, blank=True)
    request_id = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=20, default="waiting")
    due_at = models.DateTimeField(null=True, blank=True)
    download_url = models.CharField(max_length=300, blank=True, help_text="Single-use; shown to the admins.")
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant_id", "picked_up_at"], name="privacyintake_pending")]

    def __str__(self) -> str:
        return f"{self.kind} request {self.pk}"
