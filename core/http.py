"""Small helpers about requests shared by views, the API and services."""

from __future__ import annotations

from django.http import HttpRequest


def client_ip(request: HttpRequest | None) -> str | None:
    """The client address Django saw (REMOTE_ADDR; set it from a trusted proxy upstream)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def user_agent(request: HttpRequest | None) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else ""
