"""Requests filed by workspace admins (workspace.PrivacyIntake, in each tenant's placement).

Tenant-host requests may not touch control-plane tables, so the workspace writes an intake row in
its own placement and beat runs `intake_sweep` every minute: for each waiting row it opens the real
request (source `ws:<intake id>`, which also makes the pickup idempotent: a sweeper that dies
between opening and marking finds the request on its next pass and only marks), wipes the email
from the intake row, and on later passes copies the status, the due date and — once the bundle is
ready — a single-use download link back for the workspace's admins.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.actors import SystemActor
from core.errors import ApplicationError
from privacy.models import RequestStatus, SubjectRequest
from privacy.services import link_create, request_open
from tenants.context import tenant_context
from tenants.models import Tenant
from workspace.models import PrivacyIntake


def _download_url(token: str) -> str:
    port = settings.TENANCY_WORKSPACE_PORT
    host = settings.BASE_DOMAIN + (f":{port}" if port else "")
    return f"{settings.TENANCY_WORKSPACE_SCHEME}://{host}/privacy/download/{token}/"


def _pick_up(tenant: Tenant, intake: PrivacyIntake) -> SubjectRequest | None:
    source = f"ws:{intake.pk}"
    existing = SubjectRequest.objects.filter(tenant=tenant, source=source).first()
    if existing is not None:
        return existing
    actor = SystemActor(f"workspace admin (member {intake.requested_by_member}) of {tenant.slug}")
    try:
        return request_open(tenant=tenant, email=intake.email, kind=intake.kind, actor=actor, source=source)
    except ApplicationError as exc:
        with tenant_context(tenant) as alias:
            PrivacyIntake.objects.using(alias).filter(pk=intake.pk).update(
                email="", picked_up_at=timezone.now(), status="refused", error=str(exc)[:300]
            )
        return None


def intake_sweep() -> dict[str, Any]:
    picked = updated = 0
    for tenant in Tenant.objects.exclude(placement=None).select_related("placement"):
        if tenant.status != Tenant.Status.ACTIVE:
            continue
        with tenant_context(tenant) as alias:
            waiting = list(PrivacyIntake.objects.using(alias).filter(picked_up_at__isnull=True, kind="access")[:50])
            following = list(
                PrivacyIntake.objects.using(alias)
                .filter(request_id__isnull=False, download_url="")
                .exclude(status__in=["completed", "refused", "failed"])[:200]
            )
        for intake in waiting:
            opened = _pick_up(tenant, intake)
            if opened is None:
                continue
            with tenant_context(tenant) as alias:
                PrivacyIntake.objects.using(alias).filter(pk=intake.pk).update(
                    email="", picked_up_at=timezone.now(), request_id=opened.pk, status=opened.status,
                    due_at=opened.due_at,
                )  # fmt: skip
            picked += 1
        for intake in following:
            found = SubjectRequest.objects.filter(pk=str(intake.request_id), tenant=tenant).first()
            if found is None:
                continue
            url = ""
            if found.status == RequestStatus.READY and not found.bundle_purged_at:
                with transaction.atomic():
                    url = _download_url(link_create(subject_request=found, actor=SystemActor("workspace intake")))
            with tenant_context(tenant) as alias:
                PrivacyIntake.objects.using(alias).filter(pk=intake.pk).update(
                    status=found.status, download_url=url, error=found.error[:300]
                )
            updated += 1
    return {"picked_up": picked, "updated": updated}
