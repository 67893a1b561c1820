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

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI

from core.errors import ApplicationError, Forbidden
from core.permissions import Role, has_role


def require_api_role(request: HttpRequest, role: Role) -> None:
    """Raise a 403 API error unless the authenticated operator holds `role` or higher."""
    user = getattr(request, "auth", None) or getattr(request, "user", None)
    if not has_role(user, role):
        raise Forbidden(f"This needs the {role.group_name} role.")


def install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(ApplicationError)
    def application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
        return api.create_response(request, {"detail": exc.message}, status=exc.status)

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        # Django validators used by services (slugs, emails): the first sentence is enough.
        return api.create_response(
            request, {"detail": exc.messages[0] if exc.messages else "Invalid input."}, status=422
        )
