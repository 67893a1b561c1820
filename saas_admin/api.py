"""JSON API root, mounted at /api/ (OpenAPI document at /api/openapi.json, docs at /api/docs).

Each app owns a Router in its api.py. Every operation requires `operator_auth`
(a personal token or an operator session, see saas_admin/api_auth.py) unless it
says `auth=None`; role checks are per endpoint with `require_api_role`.
Viewers are read-only: every endpoint that changes something needs Operator
or higher (except revoking your own token, which only ever removes access).
"""

from __future__ import annotations

from datetime import datetime

from ninja import Field, NinjaAPI, Router, Schema, Status

from audit.api import router as audit_router
from compliance.api import router as compliance_router
from core.api import install_error_handlers, require_api_role
from core.errors import InvalidInput, ScopeExceeded
from core.permissions import Role, operator_role
from events.api import router as events_router
from saas_admin import services
from saas_admin.api_auth import operator_auth
from saas_admin.models import TokenScope
from saas_admin.selectors import token_list_for
from tenants.api import router as tenants_router
from tenants.server_api import router as servers_router

ERROR_STATUSES = {
    400: "The request is malformed: one sentence says which parameter and why.",
    401: "No credentials, an unknown, expired or revoked token, or a session without two-factor sign-in.",
    403: "The operator's role, or the token's scope, does not allow this.",
    404: "No such object (a malformed id is not found either).",
    409: "The object's current state forbids this.",
    422: "The input is well-formed but not acceptable (a taken slug, an unknown placement).",
}


class ControlPlaneAPI(NinjaAPI):
    """The OpenAPI document says what every operation can answer: besides its own responses, any of
    the errors of the one handler (core.api), each `{"detail": sentence}`."""

    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = {
            "type": "object",
            "properties": {"detail": {"type": "string", "description": "One sentence."}},
            "required": ["detail"],
        }
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                public = not operation.get("security")
                for status, description in ERROR_STATUSES.items():
                    if public and status in (401, 403):
                        continue
                    operation["responses"].setdefault(status, {"description": description, "content": error})
        return schema


api = ControlPlaneAPI(
    title="Tenant control plane API",
    version="1",
    description="Operator API. Authenticate with `Authorization: Bearer <token>` (create one at /account/tokens/).",
    openapi_url="/openapi.json",
    docs_url="/docs",
    auth=operator_auth,
)
install_error_handlers(api)


@api.exception_handler(ScopeExceeded)
def scope_exceeded(request, exc: ScopeExceeded):
    if getattr(request, "api_token", None) is not None:
        services.token_scope_refused(request=request, needed=exc.needed)
    return api.create_response(request, {"detail": exc.message}, status=403)


account = Router(tags=["account"])


class MeOut(Schema):
    username: str
    email: str
    role: str
    auth: str


class TokenOut(Schema):
    id: int
    name: str
    scope: TokenScope
    prefix: str
    state: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class TokenIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    scope: TokenScope = TokenScope.READ
    expires_in_days: int | None = Field(90, ge=1, le=365, description="Days until it expires; null: never.")


class TokenCreatedOut(TokenOut):
    token: str


def _token_out(token) -> dict:
    return {
        "id": token.pk,
        "name": token.name,
        "scope": token.scope,
        "prefix": token.prefix,
        "state": token.state,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
    }


@account.get("/me", response=MeOut, summary="The operator behind this request")
def me(request):
    user = request.auth
    return {
        "username": user.get_username(),
        "email": user.email,
        "role": role.group_name if (role := operator_role(user)) else "",
        "auth": "token" if getattr(request, "api_token", None) else "session",
    }


@account.get("/tokens", response=list[TokenOut], summary="Your API tokens")
def token_list(request):
    return [_token_out(t) for t in token_list_for(user=request.auth)]


@account.post("/tokens", response={201: TokenCreatedOut}, summary="Create an API token for yourself (Operator+)")
def token_create(request, payload: TokenIn):
    require_api_role(request, Role.OPERATOR)
    if payload.expires_in_days is not None and not 1 <= payload.expires_in_days <= 365:
        raise InvalidInput("expires_in_days must be between 1 and 365, or null for no expiry.")
    created = services.token_create(
        actor=request.auth,
        name=payload.name,
        expires_in_days=payload.expires_in_days,
        scope=payload.scope,
        request=request,
    )
    return Status(201, {**_token_out(created.token), "token": created.plaintext})


@account.delete("/tokens/{token_id}", response={204: None}, summary="Revoke a token (yours; Admins: anyone's)")
def token_revoke(request, token_id: int):
    services.token_revoke(actor=request.auth, token_id=token_id, request=request)  # 404 / 409 via core.api
    return Status(204, None)


api.add_router("", account)
api.add_router("/audit", audit_router)
api.add_router("/tenants", tenants_router)
api.add_router("/servers", servers_router)
api.add_router("/events", events_router)
api.add_router("/compliance", compliance_router)
api.add_router("/migrations", "migration_runs.api.router")
api.add_router("/sagas", "sagas.api.router")
api.add_router("/jobs", "jobs.api.router")
api.add_router("/privacy", "privacy.api.router")
api.add_router("/usage", "usage.api.router")
api.add_router("/webhooks", "webhooks.api.router")


@api.get("/ping", auth=None, tags=["meta"])
def ping(request):
    return {"ok": True}
