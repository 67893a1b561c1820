"""One error hierarchy for the whole application (HackSoft's core/exceptions.py, adapted).

A service refuses with one of these; the message is one sentence a user can act on and
nothing was changed. Views show the sentence (a message, or the form's error); the JSON API
turns every one into `{"detail": sentence}` with the class's status through one handler
(core.api.install_error_handlers). Nobody maps exception classes endpoint by endpoint.

    raise Conflict(f"{tenant.name} is suspended, so it cannot be suspended.")

`NotFound` and `Forbidden` are also Django's Http404 and PermissionDenied, so a plain view
that lets them propagate answers the 404 or 403 page, exactly as Django would.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404


class ApplicationError(Exception):
    """A refusal with one clear sentence; nothing was changed."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(ApplicationError):
    """The input is wrong (a bad slug, an unknown placement, a number out of range)."""

    status = 422


class Conflict(ApplicationError):
    """The input is fine but the object's current state forbids the action."""

    status = 409


class NotFound(ApplicationError, Http404):
    """No such object, or not one the actor may see (a malformed id is also not found)."""

    status = 404


class Forbidden(ApplicationError, PermissionDenied):
    """The actor lacks the role for this action."""

    status = 403


class Unauthenticated(ApplicationError):
    """The request is not (fully) signed in: no credentials, or a second factor still missing."""

    status = 401


class ScopeExceeded(Forbidden):
    """An API token used beyond its scope (the caller's role would allow it; the token does not)."""

    def __init__(self, message: str, *, needed: Any = None) -> None:
        super().__init__(message)
        self.needed = needed
