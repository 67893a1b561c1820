"""Writes on tenants: create, provision (synchronously), suspend, resume; custom domains."""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from tenants import placements, selectors
from tenants.lifecycle import registered_data, tenant_event
from tenants.models import Domain, Tenant
from tenants.provisioning import PROVISIONING_STEPS, ProvisioningError, Step
from tenants.selectors import primary_domain_for
from tenants.validation import schema_name_for_slug, validate_slug

logger = logging.getLogger(__name__)


def tenant_validate_new(*, slug: str, name: str, isolation: str, plan: str, owner_email: str) -> dict[str, str]:
    """Check everything before anything is created; raise ValidationError with one clear sentence."""
    validate_slug(slug)
    if isolation not in Tenant.Isolation.values:
        raise ValidationError(f"Isolation must be one of: {', '.join(Tenant.Isolation.values)}.")
    if plan not in Tenant.Plan.values:
        raise ValidationError(f"Plan must be one of: {', '.join(Tenant.Plan.values)}.")
    name = (name or "").strip() or slug.replace("-", " ").title()
    if len(name) > 200:
        raise ValidationError("The name may be at most 200 characters long.")
    owner_email = (owner_email or "").strip().lower()
    if owner_email:
        try:
            validate_email(owner_email)
        except ValidationError:
            raise ValidationError(f"“{owner_email}” is not a valid email address.")
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError(f"A tenant with the slug “{slug}” already exists.")
    if Domain.objects.filter(domain=primary_domain_for(slug)).exists():
        raise ValidationError(f"The domain {primary_domain_for(slug)} is already taken.")
    if isolation == Tenant.Isolation.SCHEMA and placements.schema_exists(schema_name_for_slug(slug)):
        raise ValidationError(f"A schema for “{slug}” already exists; choose another slug.")
    if isolation == Tenant.Isolation.DEDICATED and placements.database_exists(placements.dedicated_database_name(slug)):
        raise ValidationError(f"A database for “{slug}” already exists; choose another slug.")
    return {"slug": slug, "name": name, "isolation": isolation, "plan": plan, "owner_email": owner_email}


def tenant_create_pending(
    *, slug: str, name: str = "", isolation: str, plan: str = Tenant.Plan.FREE, owner_email: str = ""
) -> Tenant:
    """The Tenant row in `pending`, after validation; provisioning steps (or the saga) take it from here."""
    values = tenant_validate_new(slug=slug, name=name, isolation=isolation, plan=plan, owner_email=owner_email)
    with transaction.atomic():
        tenant = Tenant.objects.create(**values, status=Tenant.Status.PENDING, status_changed_at=timezone.now())
        tenant_event(tenant.pk, "TenantRegistered", **registered_data(tenant))
    return tenant


def tenant_remove_unprovisioned(tenant_id: Any) -> None:
    """Delete a tenant row whose provisioning was compensated, and say so in its lifecycle."""
    with transaction.atomic():
        deleted, _ = Tenant.objects.filter(pk=tenant_id).delete()
        if deleted:
            tenant_event(tenant_id, "TenantRemoved", status=Tenant.Status.DELETED)


def steps_run(tenant_id: Any, steps: list[Step], *, on_step=None) -> None:
    """Run steps in order; on failure run the compensations of the steps started, newest first."""
    started: list[Step] = []
    try:
        for step in steps:
            started.append(step)
            if on_step:
                on_step(step)
            step.action(tenant_id)
    except Exception as exc:
        logger.warning("provisioning step %s failed for tenant %s: %s", started[-1].name, tenant_id, exc)
        for step in reversed(started):
            try:
                step.compensate(tenant_id)
            except Exception:  # keep compensating the rest; the log says what is left
                logger.exception("compensation %s failed for tenant %s", step.name, tenant_id)
        raise


def tenant_provision_sync(
    *, slug: str, name: str = "", isolation: str, plan: str = Tenant.Plan.FREE, owner_email: str = "", on_step=None
) -> Tenant:
    """Create and fully provision a tenant in-process (shell, tests). All or nothing."""
    tenant = tenant_create_pending(slug=slug, name=name, isolation=isolation, plan=plan, owner_email=owner_email)
    try:
        steps_run(tenant.pk, PROVISIONING_STEPS[isolation], on_step=on_step)
    except ProvisioningError:
        tenant_remove_unprovisioned(tenant.pk)
        raise
    except Exception as exc:
        tenant_remove_unprovisioned(tenant.pk)
        raise ProvisioningError(f"Provisioning failed and was rolled back ({exc.__class__.__name__}).") from exc
    tenant.refresh_from_db()
    return tenant


_TRANSITION_EVENTS = {Tenant.Status.SUSPENDED: "TenantSuspended", Tenant.Status.ACTIVE: "TenantResumed"}


def _transition(
    *, tenant: Tenant, source: str, target: str, actor: Any, action: str, reason: str, request: HttpRequest | None
) -> bool:
    with transaction.atomic():
        updated = Tenant.objects.filter(pk=tenant.pk, status=source).update(
            status=target, status_reason=reason[:300], status_changed_at=timezone.now()
        )
        if not updated:
            return False
        tenant_event(tenant.pk, _TRANSITION_EVENTS.get(target, "TenantStatusChanged"), status=target, reason=reason)
        selectors.host_cache_clear()
        transaction.on_commit(selectors.host_cache_clear)  # again, in case a request re-cached the old state
        audit_record(
            actor=actor,
            action=action,
            target_type="tenant",
            target_id=tenant.pk,
            summary=f"{tenant.slug}: {source} → {target}" + (f" ({reason})" if reason else ""),
            request=request,
            details={"slug": tenant.slug, "from": source, "to": target, "reason": reason},
        )
    tenant.refresh_from_db()
    return True


def tenant_suspend(*, tenant: Tenant, actor: Any, reason: str = "", request: HttpRequest | None = None) -> bool:
    """active → suspended; the workspace then answers a 'suspended' page. False if it was not active."""
    return _transition(
        tenant=tenant, source=Tenant.Status.ACTIVE, target=Tenant.Status.SUSPENDED, actor=actor,
        action=AuditAction.TENANT_SUSPEND, reason=reason, request=request,
    )  # fmt: skip


def tenant_resume(*, tenant: Tenant, actor: Any, request: HttpRequest | None = None) -> bool:
    """suspended → active. False if it was not suspended."""
    return _transition(
        tenant=tenant, source=Tenant.Status.SUSPENDED, target=Tenant.Status.ACTIVE, actor=actor,
        action=AuditAction.TENANT_RESUME, reason="", request=request,
    )  # fmt: skip


def tenant_teardown_sync(tenant_id: Any) -> None:
    """Remove a tenant completely: every compensation of its provisioning steps, then the row.

    Safe to run twice and on half-provisioned tenants (each compensation checks what exists).
    """
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return
    for step in reversed(PROVISIONING_STEPS[tenant.isolation]):
        step.compensate(tenant.pk)
    Tenant.objects.filter(pk=tenant.pk).delete()
    selectors.host_cache_clear()


# --- Custom domains -----------------------------------------------------------------------------

_HOSTNAME_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME_RE = re.compile(rf"^{_HOSTNAME_LABEL}(\.{_HOSTNAME_LABEL})+$")


def domain_normalise(value: str) -> str:
    """Lowercase, trim, drop a scheme, a path, a port and a trailing dot: `https://Shop.Example.com:443/` → `shop.example.com`."""
    host = (value or "").strip().lower()
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", host)
    host = host.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    host = host.rsplit("@", 1)[-1]
    if ":" in host:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def domain_validate_new(*, tenant: Tenant, domain: str) -> str:
    """The normalised host name, or ValidationError with one sentence."""
    host = domain_normalise(domain)
    if not host:
        raise ValidationError("Enter a domain name, for example shop.example.com.")
    if len(host) > 253:
        raise ValidationError("A domain name may be at most 253 characters long.")
    if not _HOSTNAME_RE.match(host):
        raise ValidationError(
            f"“{host[:80]}” is not a valid domain name: use letters, digits and hyphens in dot-separated "
            "labels (no label starting or ending with a hyphen), for example shop.example.com."
        )
    base = settings.BASE_DOMAIN.lower()
    if host == base or host.endswith(f".{base}"):
        raise ValidationError(f"Domains under {base} are the tenants' own addresses and cannot be added by hand.")
    if host in {h.lower() for h in settings.TENANCY_OPERATOR_HOSTS}:
        raise ValidationError(f"{host} serves the operator dashboard and cannot belong to a tenant.")
    existing = Domain.objects.filter(domain=host).select_related("tenant").first()
    if existing is not None:
        if existing.tenant_id == tenant.pk:
            raise ValidationError(f"{host} is already a domain of this tenant.")
        raise ValidationError(f"{host} already belongs to another tenant.")
    return host


def _domain_changed(*, actor: Any, action: str, domain: Domain, summary: str, request: HttpRequest | None) -> None:
    selectors.host_cache_clear()
    transaction.on_commit(selectors.host_cache_clear)
    audit_record(
        actor=actor,
        action=action,
        target_type="tenant",
        target_id=domain.tenant_id,
        summary=summary,
        request=request,
        details={"domain": domain.domain, "tenant": domain.tenant.slug, "verified": domain.verified},
    )


def domain_add(*, tenant: Tenant, domain: str, actor: Any, request: HttpRequest | None = None) -> Domain:
    """Add an unverified custom domain with a fresh verification token; it resolves once verified."""
    host = domain_validate_new(tenant=tenant, domain=domain)
    try:
        with transaction.atomic():
            row = Domain.objects.create(
                tenant=tenant, domain=host, is_primary=False, verified=False,
                verification_token=secrets.token_hex(16),
            )  # fmt: skip
            _domain_changed(actor=actor, action=AuditAction.DOMAIN_ADD, domain=row, request=request,
                            summary=f"{tenant.slug}: domain {host} added (unverified)")  # fmt: skip
    except IntegrityError:  # a concurrent add of the same host won the race
        raise ValidationError(f"{host} already belongs to a tenant.")
    return row


def domain_verify(*, domain: Domain, actor: Any, request: HttpRequest | None = None) -> bool:
    """Mark a custom domain verified (an operator confirmed the TXT record). False if it already was."""
    with transaction.atomic():
        updated = Domain.objects.filter(pk=domain.pk, verified=False).update(verified=True, verified_at=timezone.now())
        if not updated:
            return False
        domain.refresh_from_db()
        _domain_changed(actor=actor, action=AuditAction.DOMAIN_VERIFY, domain=domain, request=request,
                        summary=f"{domain.tenant.slug}: domain {domain.domain} verified")  # fmt: skip
    return True


def domain_remove(*, domain: Domain, actor: Any, request: HttpRequest | None = None) -> None:
    """Delete a custom domain; the primary `<slug>.BASE_DOMAIN` cannot be removed (ValidationError)."""
    if domain.is_primary:
        raise ValidationError(f"{domain.domain} is the tenant's primary domain and cannot be removed.")
    with transaction.atomic():
        deleted, _ = Domain.objects.filter(pk=domain.pk, is_primary=False).delete()
        if deleted:
            _domain_changed(actor=actor, action=AuditAction.DOMAIN_REMOVE, domain=domain, request=request,
                            summary=f"{domain.tenant.slug}: domain {domain.domain} removed")  # fmt: skip
