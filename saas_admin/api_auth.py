"""Authentication and role checks for every JSON API router.

    from saas_admin.api_auth import operator_auth, require_api_role
    from core.permissions import Role

    router = Router(tags=["tenants"])          # inherits `operator_auth` from the NinjaAPI

    @router.post("/things")
    def create_thing(request, payload: ThingIn):
        require_api_role(request, Role.OPERATOR)   # 403 unless Operator or Admin
        audit_record(actor=request.user, ..., request=request)

`operator_auth` accepts either a personal token (`Authorization: Bearer
cpt_…`, created at /account/tokens/) or the signed-in dashboard session of
an operator (then CSRF is enforced for unsafe methods, as for forms). Both
set `request.user` (and `request.auth`) to the operator; a token request
also sets `request.api_token`. No credentials, an unknown/revoked/expired
token, a non-operator, or a session that has not passed two-factor sign-in ⇒ 401. A token also
carries a scope (read/write/admin, never above its owner's role): `require_api_role` refuses a
token used beyond it with 403, audited. The role check is done per endpoint with
`require_api_role`, which raises a ninja 403 with one sentence.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer

from core.errors import Unauthenticated
from core.permissions import is_auditor, operator_role
from saas_admin.mfa import mfa_satisfied
from saas_admin.services import scope_role, token_authenticate


class OperatorTokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`; the token is looked up by its SHA-256 hash."""

    def __call__(self, request: HttpRequest) -> Any:
        # Overridden so an unexpected header value is never logged (ninja logs it in DEBUG).
        value = request.headers.get(self.header, "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = token_authenticate(token, request=request)
        if found is None:
            return None
        user, api_token = found
        request.user = user
        request.api_token = api_token  # type: ignore[attr-defined]
        request.api_scope_role = scope_role(api_token.scope)  # type: ignore[attr-defined]  # core.api checks it
        return user


def _session_reader(user: Any) -> bool:
    """An operator, or an Auditor (sessions only: Auditors hold no tokens; endpoints check roles)."""
    return operator_role(user) is not None or is_auditor(user)


class OperatorSessionAuth(APIKeyCookie):
    """The dashboard session of a signed-in operator (staff with a role), CSRF-checked."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        # Only check CSRF for a real operator session, so a request without any
        # credentials gets a plain 401 instead of a CSRF 403.
        if not _session_reader(getattr(request, "user", None)):
            return None
        return super()._get_key(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if key is None or not _session_reader(user):
            return None
        if not mfa_satisfied(request):
            raise Unauthenticated("Finish two-factor sign-in at /account/mfa/verify/ first, or use an API token.")
        return user


operator_auth = [OperatorTokenAuth(), OperatorSessionAuth()]


__all__ = ["OperatorSessionAuth", "OperatorTokenAuth", "operator_auth"]
