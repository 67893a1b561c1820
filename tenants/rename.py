"""Renaming a tenant: its slug, its primary domain, and — schema and dedicated levels — the name of its
schema or database. The one entry point behind the tenant page, the API and `manage.py rename_tenant`:

    tenant, move = tenant_rename(tenant=tenant, new_slug="acme-eu", domain="", actor=request.user)

validates first (one sentence, nothing changed), then in one transaction: the slug, the new primary
domain (`<new-slug>.<BASE_DOMAIN>`, or `domain`: another host under BASE_DOMAIN, or one of the tenant's
verified custom domains), the old primary host kept as a redirect until TENANCY_RENAME_REDIRECT_DAYS
from now (tenants.middleware answers it with a redirect to the new host, then it is free again), the
`TenantRenamed` event, the `tenant.rename` audit entry and every process's host cache cleared.

The schema or database keeps its old name until a **move to the same level** — started in the same
transaction — has copied the tenant into `t_<new-slug>` (or a database named after the new slug) and
switched; the old one is purged after the move's grace period. Why a move and not `ALTER SCHEMA …
RENAME` / `ALTER DATABASE … RENAME`: the rename is instant, but every reader still using the old name
(another process before its host-cache notification arrives, the second query of a page) would fail
with "relation does not exist", and a database can only be renamed with no connection to it at all
(every pooled connection, PgBouncer's too, terminated). The move serves reads throughout, pauses
writes for one freeze (≤ 1 s), is crash-safe and compensates on failure — then the tenant keeps its
new slug and domain and the old storage name, and the move can be started again.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import Conflict, InvalidInput
from tenants import placements
from tenants.lifecycle import tenant_event
from tenants.models import Domain, Placement, Tenant, TenantMove
from tenants.moves.fence import hosts_changed
from tenants.moves.services import tenant_move
from tenants.selectors import primary_domain_for
from tenants.services import domain_normalise, domains_release_expired
from tenants.validation import schema_name_for_slug, validate_slug


def _new_host(*, tenant: Tenant, new_slug: str, domain: str) -> str:
    base = settings.BASE_DOMAIN.lower()
    if not domain.strip():
        return primary_domain_for(new_slug)
    host = domain_normalise(domain)
    if host.endswith(f".{base}"):
        label = host[: -len(base) - 1]
        try:
            validate_slug(label)
        except ValidationError as exc:
            raise InvalidInput(f"{host[:80]} cannot be a tenant's address: {exc.messages[0]}") from None
        return host
    own = Domain.objects.filter(tenant=tenant, domain=host, verified=True, redirect_until__isnull=True).exists()
    if not own:
        raise InvalidInput(
            f"{host[:80]} is not a verified domain of this tenant; add and verify it as a custom domain first, "
            f"or use an address under {base}."
        )
    return host


def tenant_rename_validate(*, tenant: Tenant, new_slug: str, domain: str = "") -> str:
    """Check everything before anything changes; return the new primary host. InvalidInput / Conflict
    with one sentence."""
    try:
        validate_slug(new_slug)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0]) from None
    host = _new_host(tenant=tenant, new_slug=new_slug, domain=domain)
    primary = tenant.domains.filter(is_primary=True).values_list("domain", flat=True).first()
    if new_slug == tenant.slug and host == primary:
        raise InvalidInput(f"{tenant.name} is already called “{new_slug}” at {host}.")
    if tenant.status != Tenant.Status.ACTIVE or tenant.placement is None:
        raise Conflict(f"{tenant.name} is {tenant.get_status_display().lower()}; only an active tenant can be renamed.")
    if TenantMove.objects.filter(tenant=tenant, state=TenantMove.State.RUNNING).exists():
        raise Conflict(f"{tenant.name} is being moved; rename it when the move has finished.")
    if Tenant.objects.filter(slug=new_slug).exclude(pk=tenant.pk).exists():
        raise InvalidInput(f"The slug “{new_slug}” is already taken; please choose another.")
    now = timezone.now()
    taken = Domain.objects.filter(domain=host).exclude(tenant=tenant).exclude(redirect_until__lte=now)
    if taken.exists():
        raise InvalidInput(f"The domain {host} is already taken; please choose another.")
    placement = tenant.placement
    assert placement is not None  # checked above
    if new_slug != tenant.slug and placement.kind == Placement.Kind.SCHEMA:
        if placements.schema_exists(schema_name_for_slug(new_slug)):
            raise InvalidInput(f"A schema for “{new_slug}” already exists; choose another slug.")
    if new_slug != tenant.slug and placement.kind == Placement.Kind.DATABASE:
        if placements.database_exists(placements.dedicated_database_name(new_slug)):
            raise InvalidInput(f"A database for “{new_slug}” already exists; choose another slug.")
    return host


def tenant_rename(
    *, tenant: Tenant, new_slug: str, actor: Actor, domain: str = "", request: HttpRequest | None = None
) -> tuple[Tenant, TenantMove | None]:
    """Rename `tenant` (see the module docstring). Returns the renamed tenant and the move that renames
    its schema or database (None for a tenant in a pool, or when only the domain changed)."""
    new_slug = (new_slug or "").strip()
    try:
        with transaction.atomic():
            tenant = Tenant.objects.select_for_update(of=("self",)).select_related("placement").get(pk=tenant.pk)
            host = tenant_rename_validate(tenant=tenant, new_slug=new_slug, domain=domain)
            domains_release_expired()
            now = timezone.now()
            days = settings.TENANCY_RENAME_REDIRECT_DAYS
            redirect_until = now + timedelta(days=days)
            old_slug = tenant.slug
            old = tenant.domains.filter(is_primary=True).first()
            if old is not None and old.domain != host:
                base = settings.BASE_DOMAIN.lower()
                if not old.domain.endswith(f".{base}"):
                    Domain.objects.filter(pk=old.pk).update(is_primary=False)  # a custom domain keeps serving
                elif days > 0:
                    Domain.objects.filter(pk=old.pk).update(is_primary=False, redirect_until=redirect_until)
                else:
                    Domain.objects.filter(pk=old.pk).delete()
            mine = Domain.objects.filter(tenant=tenant, domain=host)
            if not mine.update(is_primary=True, verified=True, redirect_until=None):
                Domain.objects.create(tenant=tenant, domain=host, is_primary=True, verified=True, verified_at=now)
            Tenant.objects.filter(pk=tenant.pk).update(slug=new_slug, updated_at=now)
            redirect = old is not None and old.domain != host and old.domain.endswith(f".{settings.BASE_DOMAIN}")
            tenant_event(
                tenant.pk, "TenantRenamed", old_slug=old_slug, slug=new_slug,
                old_domain=old.domain if old else None, domain=host,
                redirect_until=redirect_until.isoformat() if redirect and days > 0 else None,
            )  # fmt: skip
            audit_record(
                actor=actor,
                action=AuditAction.TENANT_RENAME,
                target_type="tenant",
                target_id=tenant.pk,
                summary=f"Renamed {old_slug} → {new_slug} ({old.domain if old else '—'} → {host})",
                request=request,
                details={"old_slug": old_slug, "slug": new_slug, "old_domain": old.domain if old else None,
                         "domain": host, "redirect_days": days if redirect else 0},
            )  # fmt: skip
            hosts_changed()
            tenant.refresh_from_db()
            move = None
            if new_slug != old_slug and tenant.placement and tenant.placement.kind != Placement.Kind.POOL:
                # The schema or database follows the slug through a move to the same level.
                move = tenant_move(tenant=tenant, to=tenant.isolation, actor=actor, request=request)
    except IntegrityError:  # a concurrent rename or provisioning took the slug or host first
        raise Conflict(f"The slug “{new_slug}” or its domain was taken a moment ago; please choose another.") from None
    return tenant, move
