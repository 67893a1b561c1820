"""What every JSON API router needs: the role check and the one error handler.

    from core.api import require_api_role
    from core.permissions import Role

    @router.post("/{tenant_id}/suspend")
    def suspend(request, tenant_id: uuid.UUID):
        require_api_role(request, Role.OPERATOR)        # 403 {"detail": "This needs the Operator role."}
        return services.tenant_suspend(...)            # a Conflict becomes 409 {"detail": "…"}

Services raise core.errors; `install_error_handlers(api)` (called once on the NinjaAPI in
saas_admin/api.py) turns each into `{"detail": sentence}` with its status. Endpoints never
catch and re-map them.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError

from core.errors import ApplicationError, Forbidden, ScopeExceeded
from core.permissions import Role, can_read_governance, has_role


def require_api_role(request: HttpRequest, role: Role) -> None:
    """Raise a 403 API error unless the authenticated operator holds `role` or higher, and the token
    the request came with (if any) has a scope that reaches it (`request.api_scope_role`)."""
    user = getattr(request, "auth", None) or getattr(request, "user", None)
    if not has_role(user, role):
        raise Forbidden(f"This needs the {role.group_name} role.")
    scope = getattr(request, "api_scope_role", None)
    if scope is not None and scope < role:
        raise ScopeExceeded(f"This token's scope does not reach what this needs ({role.group_name}).", needed=role)


def require_api_reader(request: HttpRequest) -> None:
    """Raise a 403 API error unless the operator may read governance data: Viewer+ or an Auditor."""
    user = getattr(request, "auth", None) or getattr(request, "user", None)
    if not can_read_governance(user):
        raise Forbidden("This needs the Viewer or Auditor role.")


def request_error_sentence(errors: list[dict[str, Any]]) -> str:
    """One sentence for a request the schema refuses: where, then what (the first problem only)."""
    if not errors:
        return "The request is not valid."
    first = errors[0]
    where = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "payload", "filters")]
    message = str(first.get("msg", "is not valid")).rstrip(".")
    if first.get("type") in ("model_attributes_type", "dict_type", "model_type"):
        message = "must be a JSON object"
    return f"{'.'.join(where) or 'The request'}: {message}."[:300]


def install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(NinjaValidationError)
    def request_invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        # Query, path or body that the schema refuses (wrong type, out of range, an array for an object).
        return api.create_response(request, {"detail": request_error_sentence(list(exc.errors))}, status=400)

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # ninja's own: a body that is not JSON ("Cannot parse request body"), a failed CSRF check.
        message = str(exc)
        if message.startswith("Cannot parse request body"):
            message = "The request body is not valid JSON."
        return api.create_response(request, {"detail": message.rstrip(".") + "."}, status=exc.status_code)

    @api.exception_handler(ApplicationError)
    def application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
        return api.create_response(request, {"detail": exc.message}, status=exc.status)

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        # Django validators used by services (slugs, emails): the first sentence is enough.
        return api.create_response(
            request, {"detail": exc.messages[0] if exc.messages else "Invalid input."}, status=422
        )
