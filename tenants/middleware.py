"""Host → Domain → Tenant, then the view runs inside that tenant's context.

- BASE_DOMAIN, admin.BASE_DOMAIN and TENANCY_OPERATOR_HOSTS: operator dashboard (ROOT_URLCONF).
- A renamed tenant's old host, while its redirect lasts: 307 to the same path on the new primary host.
- `<slug>.BASE_DOMAIN` or a verified custom domain: the tenant's workspace
  (settings.TENANCY_HOST_URLCONF), served only while the tenant is active; suspended or
  moving tenants get a clear page, anything else a 404 page. A moving tenant still serves reads
  (read-only transaction on its source); its writes get 409 with Retry-After.
- Writes (any method but GET/HEAD/OPTIONS) pass the move's write fence (tenants.moves.fence): the
  tenant's status and placement are re-read under a shared advisory lock that stays held until the
  data-plane transaction has committed, so a stale host cache can never write to a frozen source.
- The rest of the request (sessions, authentication, the view) runs in tenant_context with
  the data-plane role (one transaction; GUC + search_path transaction-local); a 5xx response
  rolls that transaction back. GET/HEAD/OPTIONS run without the request transaction
  (TENANCY_READ_ONLY_AUTOCOMMIT): each query carries the settings in its own implicit transaction. Members' sessions live in the tenant's own placement
  (workspace.sessions), chosen by `HostSessionMiddleware`.
- Noisy neighbours: a plan's `requests_per_minute` quota is counted per tenant in the shared
  `limits` cache (429 with Retry-After over it), and every served request's latency is recorded
  per tenant (core.requestmeter; rolled up by the usage collector).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import connections, transaction
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from core import requestmeter
from core.http import TenantRequest
from core.limits import rate_limit_leased_hit
from core.quotas import quota_for, quota_sentence
from tenants import selectors
from tenants.context import tenant_context
from tenants.models import Tenant
from tenants.moves.fence import write_fence
from workspace import sessions as member_sessions


def operator_hosts() -> set[str]:
    base = settings.BASE_DOMAIN.lower()
    return {base, f"admin.{base}", *(h.lower() for h in settings.TENANCY_OPERATOR_HOSTS)}


def request_host(request: HttpRequest) -> str:
    host = request.get_host().lower()
    if host.startswith("["):  # IPv6 literal
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0].rstrip(".")


class TenantHostMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: TenantRequest) -> HttpResponse:
        request.tenant = None
        host = request_host(request)
        if host in operator_hosts():
            return self.get_response(request)
        tenant = selectors.tenant_for_host(host)
        if tenant is None and (target := selectors.redirect_for_host(host)):
            return _renamed(request, target)
        if tenant is None or tenant.status in (Tenant.Status.DELETING, Tenant.Status.DELETED):
            return TemplateResponse(request, "tenants/unknown_host.html", {"host": host}, status=404).render()
        request.tenant = tenant
        reading = request.method in SAFE_METHODS
        if tenant.status == Tenant.Status.MOVING and tenant.placement_id is not None and reading:
            return self._serve(request, tenant, read_only=True)
        if tenant.status == Tenant.Status.MOVING:
            return _moving(request, tenant)
        if tenant.status != Tenant.Status.ACTIVE or tenant.placement_id is None:
            return _unavailable(request, tenant)
        per_minute = quota_for(tenant.plan, "requests_per_minute")
        # Leases of 1/20 of the budget: one shared-cache increment per 20-odd requests, never over the limit.
        lease = max(1, per_minute // 20) if per_minute is not None else 1
        if per_minute is not None and rate_limit_leased_hit(
            "tenant-requests", str(tenant.pk), limit=per_minute, window=60, lease=lease
        ):
            refused = HttpResponse(
                quota_sentence("requests_per_minute", per_minute), status=429, content_type="text/plain"
            )
            refused["Retry-After"] = str(60 - int(time.time()) % 60)
            return refused
        if reading:
            return self._serve(request, tenant)
        with transaction.atomic(using="default"):  # held until the data-plane transaction has committed
            fresh = write_fence(tenant.pk)
            if fresh is None:
                return TemplateResponse(request, "tenants/unknown_host.html", {"host": host}, status=404).render()
            status, placement_id = fresh
            if status != Tenant.Status.ACTIVE or placement_id != tenant.placement_id:
                selectors.host_cache_clear()  # this process's cache was stale
                tenant = Tenant.objects.select_related("placement").get(pk=tenant.pk)
                request.tenant = tenant
            if status == Tenant.Status.MOVING:
                return _moving(request, tenant)
            if status != Tenant.Status.ACTIVE or tenant.placement_id is None:
                return _unavailable(request, tenant)
            return self._serve(request, tenant)

    def _serve(self, request: TenantRequest, tenant: Tenant, *, read_only: bool = False) -> HttpResponse:
        request.urlconf = settings.TENANCY_HOST_URLCONF
        # Safe methods only read (writes are POST views; a session save opens its own transaction), so
        # they skip the request transaction: no BEGIN/COMMIT round trips, each query one round trip
        # with the tenant settings in its implicit transaction (tenants.context._TenantSettings).
        # A moving tenant's reads (`read_only`) keep a transaction, made read-only.
        autocommit = settings.TENANCY_READ_ONLY_AUTOCOMMIT and request.method in SAFE_METHODS and not read_only
        started = time.perf_counter()
        with tenant_context(tenant, data_plane=True, autocommit=autocommit) as alias:
            request.tenant_alias = alias
            if read_only and not connections[alias].savepoint_ids:  # outermost: the setting ends with it
                with connections[alias].cursor() as cursor:
                    cursor.execute("SET LOCAL transaction_read_only = on")
            response = self.get_response(request)
            if response.status_code >= 500 and not autocommit:
                transaction.set_rollback(True, using=alias)
        # After the tenant transaction: the shared cache is the control plane's, never the data-plane role's.
        requestmeter.record(tenant.pk, (time.perf_counter() - started) * 1000.0)
        return response


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
MOVING_RETRY_AFTER_SECONDS = 5


def _moving(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    """409: the tenant is frozen for a move; the change can be sent again in a few seconds."""
    response = TemplateResponse(request, "tenants/unavailable.html", {"tenant": tenant}, status=409).render()
    response["Retry-After"] = str(MOVING_RETRY_AFTER_SECONDS)
    return response


def _renamed(request: HttpRequest, target: str) -> HttpResponse:
    """A renamed tenant's old host, during TENANCY_RENAME_REDIRECT_DAYS: the same path on the new host.
    307 (temporary, method kept): the old name becomes free again afterwards, so no client may
    remember the redirect for good."""
    _, _, port = request.get_host().partition(":")
    location = f"{request.scheme}://{target}{':' + port if port else ''}{request.get_full_path()}"
    response = HttpResponse(status=307)
    response["Location"] = location
    return response


def _unavailable(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    return TemplateResponse(request, "tenants/unavailable.html", {"tenant": tenant}, status=503).render()


class HostSessionMiddleware(SessionMiddleware):
    """Operator hosts keep Django's sessions; a tenant host's sessions are the tenant's own rows
    (workspace.sessions, in its placement under RLS): a session key from one tenant's host means
    nothing on another's, and the data-plane role never touches the control plane's session table."""

    def process_request(self, request: HttpRequest) -> None:
        store = member_sessions.SessionStore if getattr(request, "tenant", None) is not None else self.SessionStore
        session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        request.session = store(session_key)
