"""Writes on tenants: validation of new tenants, suspend, resume, custom domains, set-password links.

Provisioning is tenants/provisioning/. Every refusal is a core.errors exception with one sentence;
every change is audited in its transaction.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import Conflict, InvalidInput
from tenants import placements, selectors
from tenants.context import tenant_context
from tenants.lifecycle import tenant_event
from tenants.models import Domain, Tenant
from tenants.selectors import primary_domain_for
from tenants.validation import schema_name_for_slug, validate_slug
from workspace import interface as workspace

logger = logging.getLogger(__name__)


def domains_release_expired() -> int:
    """Free the old hosts of renamed tenants whose redirect period is over (they answer 404 already)."""
    deleted, _ = Domain.objects.filter(redirect_until__lte=timezone.now()).delete()
    return deleted


def tenant_validate_new(*, slug: str, name: str, isolation: str, plan: str, owner_email: str) -> dict[str, str]:
    """Check everything before anything is created; raise InvalidInput with one clear sentence."""
    try:
        validate_slug(slug)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0]) from None
    if isolation not in Tenant.Isolation.values:
        raise InvalidInput(f"Isolation must be one of: {', '.join(Tenant.Isolation.values)}.")
    if plan not in Tenant.Plan.values:
        raise InvalidInput(f"Plan must be one of: {', '.join(Tenant.Plan.values)}.")
    name = (name or "").strip() or slug.replace("-", " ").title()
    if len(name) > 200:
        raise InvalidInput("The name may be at most 200 characters long.")
    owner_email = (owner_email or "").strip().lower()
    if owner_email:
        try:
            validate_email(owner_email)
        except ValidationError:
            raise InvalidInput(f"“{owner_email}” is not a valid email address.") from None
    if Tenant.objects.filter(slug=slug).exists():
        raise InvalidInput(f"A tenant with the slug “{slug}” already exists.")
    if Domain.objects.filter(domain=primary_domain_for(slug)).exclude(redirect_until__lte=timezone.now()).exists():
        raise InvalidInput(f"The domain {primary_domain_for(slug)} is already taken.")
    if isolation == Tenant.Isolation.SCHEMA and placements.schema_exists(schema_name_for_slug(slug)):
        raise InvalidInput(f"A schema for “{slug}” already exists; choose another slug.")
    if isolation == Tenant.Isolation.DEDICATED and placements.database_exists(placements.dedicated_database_name(slug)):
        raise InvalidInput(f"A database for “{slug}” already exists; choose another slug.")
    return {"slug": slug, "name": name, "isolation": isolation, "plan": plan, "owner_email": owner_email}


_TRANSITION_EVENTS: dict[str, str] = {Tenant.Status.SUSPENDED: "TenantSuspended", Tenant.Status.ACTIVE: "TenantResumed"}


def _transition(
    *,
    tenant: Tenant,
    source: str,
    target: str,
    verb: str,
    actor: Actor,
    action: AuditAction,
    reason: str,
    request: HttpRequest | None,
) -> Tenant:
    with transaction.atomic():
        updated = Tenant.objects.filter(pk=tenant.pk, status=source).update(
            status=target, status_reason=reason[:300], status_changed_at=timezone.now()
        )
        if not updated:
            tenant.refresh_from_db()
            raise Conflict(f"{tenant.name} is {tenant.get_status_display().lower()}, so it cannot be {verb}.")
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
    return tenant


def tenant_suspend(*, tenant: Tenant, actor: Actor, reason: str = "", request: HttpRequest | None = None) -> Tenant:
    """active → suspended; the workspace then answers a 'suspended' page. Conflict if it was not active."""
    return _transition(
        tenant=tenant, source=Tenant.Status.ACTIVE, target=Tenant.Status.SUSPENDED, verb="suspended", actor=actor,
        action=AuditAction.TENANT_SUSPEND, reason=reason[:300], request=request,
    )  # fmt: skip


def tenant_resume(*, tenant: Tenant, actor: Actor, request: HttpRequest | None = None) -> Tenant:
    """suspended → active. Conflict if it was not suspended."""
    return _transition(
        tenant=tenant, source=Tenant.Status.SUSPENDED, target=Tenant.Status.ACTIVE, verb="resumed", actor=actor,
        action=AuditAction.TENANT_RESUME, reason="", request=request,
    )  # fmt: skip


def owner_set_password_url(*, tenant: Tenant, email: str) -> str:
    """A one-time link to the tenant's host where this member sets a password (the owner's first sign-in)."""
    with tenant_context(tenant):
        token = workspace.set_password_token(email=email)
    return workspace_url(tenant.slug, f"/set-password/{token}/")


def workspace_url(slug: str, path: str = "/") -> str:
    """An absolute link to a tenant's workspace host (scheme and port from settings)."""
    port = settings.TENANCY_WORKSPACE_PORT
    host = primary_domain_for(slug) + (f":{port}" if port else "")
    return f"{settings.TENANCY_WORKSPACE_SCHEME}://{host}{path}"


# --- Custom domains -----------------------------------------------------------------------------

_HOSTNAME_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME_RE = re.compile(rf"^{_HOSTNAME_LABEL}(\.{_HOSTNAME_LABEL})+$")


def domain_normalise(value: str) -> str:
    """Lowercase, trim, drop a scheme, a path, a port and a trailing dot: `https://Shop.Example.com:443/` → `shop.example.com`."""
    host = (value or "").strip().lower()
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", host)
    host = host.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    host = host.rsplit("@", 1)[-1]
    if host.startswith("["):  # an IPv6 literal: refused by the caller, never cut at its colons
        return host.split("]", 1)[0] + "]"
    if ":" in host:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_ip_literal(host: str) -> bool:
    """0.0.0.0, 10.1.2.3, [::1], ::1, and dotted numbers whose last label is a number (no TLD is)."""
    candidate = host.strip("[]")
    try:
        ipaddress.ip_address(candidate)
        return True
    except ValueError:
        return host.rsplit(".", 1)[-1].isdigit()


def domain_validate_new(*, tenant: Tenant, domain: str) -> str:
    """The normalised host name, or ValidationError with one sentence."""
    host = domain_normalise(domain)
    if not host:
        raise InvalidInput("Enter a domain name, for example shop.example.com.")
    if len(host) > 253:
        raise InvalidInput("A domain name may be at most 253 characters long.")
    if _is_ip_literal(host):
        raise InvalidInput(
            f"“{host[:80]}” is an IP address; a custom domain must be a host name such as shop.example.com."
        )
    if not _HOSTNAME_RE.match(host):
        raise InvalidInput(
            f"“{host[:80]}” is not a valid domain name: use letters, digits and hyphens in dot-separated "
            "labels (no label starting or ending with a hyphen), for example shop.example.com."
        )
    base = settings.BASE_DOMAIN.lower()
    if host == base or host.endswith(f".{base}"):
        raise InvalidInput(f"Domains under {base} are the tenants' own addresses and cannot be added by hand.")
    if host in {h.lower() for h in settings.TENANCY_OPERATOR_HOSTS}:
        raise InvalidInput(f"{host} serves the operator dashboard and cannot belong to a tenant.")
    existing = Domain.objects.filter(domain=host).select_related("tenant").first()
    if existing is not None:
        if existing.tenant_id == tenant.pk:
            raise InvalidInput(f"{host} is already a domain of this tenant.")
        raise InvalidInput(f"{host} already belongs to another tenant.")
    return host


def _domain_changed(
    *, actor: Actor, action: AuditAction, domain: Domain, summary: str, request: HttpRequest | None
) -> None:
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


def domain_add(*, tenant: Tenant, domain: str, actor: Actor, request: HttpRequest | None = None) -> Domain:
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
        raise Conflict(f"{host} already belongs to a tenant.") from None
    return row


def domain_verify(*, domain: Domain, actor: Actor, request: HttpRequest | None = None) -> Domain:
    """Mark a custom domain verified (an operator confirmed the TXT record). Conflict if it already was."""
    with transaction.atomic():
        updated = Domain.objects.filter(pk=domain.pk, verified=False).update(verified=True, verified_at=timezone.now())
        if not updated:
            raise Conflict(f"{domain.domain} is already verified.")
        domain.refresh_from_db()
        _domain_changed(actor=actor, action=AuditAction.DOMAIN_VERIFY, domain=domain, request=request,
                        summary=f"{domain.tenant.slug}: domain {domain.domain} verified")  # fmt: skip
    return domain


def domain_remove(*, domain: Domain, actor: Actor, request: HttpRequest | None = None) -> None:
    """Delete a custom domain; the primary `<slug>.BASE_DOMAIN` cannot be removed (ValidationError)."""
    if domain.is_primary:
        raise Conflict(f"{domain.domain} is the tenant's primary domain and cannot be removed.")
    with transaction.atomic():
        deleted, _ = Domain.objects.filter(pk=domain.pk, is_primary=False).delete()
        if deleted:
            _domain_changed(actor=actor, action=AuditAction.DOMAIN_REMOVE, domain=domain, request=request,
                            summary=f"{domain.tenant.slug}: domain {domain.domain} removed")  # fmt: skip
