"""Small helpers about requests shared by views, the API and services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_htmx.middleware import HtmxDetails

    class OperatorRequest(HttpRequest):
        """A request to an operator view: `role_required` let it through, so `user` is a signed-in operator."""

        user: User
        auth: Any
        htmx: HtmxDetails

    class HtmxRequest(HttpRequest):
        """A public page's request (signup) with django-htmx's details."""

        htmx: HtmxDetails

    class TenantRequest(HttpRequest):
        """A request on a tenant's host, inside its tenant_context (tenants.middleware)."""

        tenant: Any
        tenant_alias: str
        member: Any
        urlconf: str
        htmx: HtmxDetails

else:  # at run time they are plain requests; the attributes are set by middleware and decorators
    OperatorRequest = HttpRequest
    HtmxRequest = HttpRequest
    TenantRequest = HttpRequest


def client_ip(request: HttpRequest | None) -> str | None:
    """The client address Django saw (REMOTE_ADDR; set it from a trusted proxy upstream)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def user_agent(request: HttpRequest | None) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else ""
