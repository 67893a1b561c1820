"""System checks of the tenants app (`manage.py check`, `check --deploy`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register

from tenants.crypto import key_problem


@register(Tags.security, deploy=True)
def field_encryption_key_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Production needs a valid FIELD_ENCRYPTION_KEY: credentials at rest are encrypted with it."""
    value = settings.FIELD_ENCRYPTION_KEY
    if not value:
        return [
            Error(
                "FIELD_ENCRYPTION_KEY is not set, so stored credentials would be encrypted with a key derived "
                "from SECRET_KEY.",
                hint="Set FIELD_ENCRYPTION_KEY to a Fernet key (see .env.example).",
                id="tenants.E001",
            )
        ]
    problem = key_problem(value)
    return [Error(problem, id="tenants.E002")] if problem else []
