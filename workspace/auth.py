"""Workspace member sign-in.

Members are rows in the tenant's own placement (workspace.Member, with a
Django password hash), not Django users: they never become operators, and a
dedicated tenant's people never live in the control-plane database. The
session (cookie is host-only, so it belongs to `<slug>.BASE_DOMAIN`) stores
the tenant id with the member id; both are checked on every request, so a
session copied to another tenant's host is simply not signed in there.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpResponse
from django.shortcuts import redirect

from core.http import TenantRequest
from core.tenancy import current_alias
from workspace.models import Member
from workspace.sessions import SESSION_KEY


def member_login(request: TenantRequest, member: Member) -> None:
    request.session.cycle_key()
    request.session[SESSION_KEY] = {"tenant": str(request.tenant.pk), "member": member.pk}


def member_logout(request: TenantRequest) -> None:
    request.session.flush()


def current_member(request: TenantRequest) -> Member | None:
    data = request.session.get(SESSION_KEY) or {}
    tenant = getattr(request, "tenant", None)
    if tenant is None or data.get("tenant") != str(tenant.pk):
        return None
    # Routed to the tenant's placement and filtered by RLS: another tenant's member id finds nothing.
    member_id = data.get("member")
    if not isinstance(member_id, int):
        return None
    return Member.objects.using(current_alias()).filter(pk=member_id, is_active=True).first()


def member_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        member = current_member(request)
        if member is None:
            return redirect(f"/login/?next={request.path}")
        request.member = member
        return view(request, *args, **kwargs)

    return wrapped
