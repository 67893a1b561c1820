"""Refuse malformed input before any view sees it, with one sentence (400).

- A NUL character anywhere in the request.
PostgreSQL text cannot hold NUL, so a `%00` in a path, a query parameter, a form field or a JSON
string (`\\u0000`) would otherwise surface as a database error — a 500 — wherever it reached a
query. One check here answers 400 with one sentence instead, for every screen and endpoint
(`{"detail": …}` under /api/, the 400 page elsewhere).
- A query parameter that is a number of 16 digits or more (pages, offsets, ids, cursors): no list
  here is that long, and past 2^63 PostgreSQL refuses it (another 500).
- An API request body that is JSON but not an object: every operation that takes a body takes an
  object (an array used to start a migration run with default settings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

NUL_SENTENCE = "The request contains a NUL character, which is never valid input."
_HUGE_NUMBER = re.compile(r"^\s*[+-]?\d{16,}\s*$")


def _huge_parameter(request: HttpRequest) -> str | None:
    for key, values in request.GET.lists():
        if any(_HUGE_NUMBER.match(value) for value in values):
            return key
    return None


def _api_body_not_an_object(request: HttpRequest) -> bool:
    if not request.path.startswith("/api/") or request.method not in ("POST", "PUT", "PATCH"):
        return False
    if not request.META.get("CONTENT_TYPE", "").startswith("application/json") or not request.body.strip():
        return False
    try:
        return not isinstance(json.loads(request.body), dict)
    except ValueError:
        return False  # not JSON at all: the operation's own parser answers


def _has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
        return True
    if any("\x00" in value for values in request.GET.lists() for value in values[1]):
        return True
    content_type = request.META.get("CONTENT_TYPE", "")
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        if content_type.startswith("application/json"):
            body = request.body
            return b"\\u0000" in body or b"\x00" in body
        if content_type.startswith("application/x-www-form-urlencoded"):
            return b"%00" in request.body or b"\x00" in request.body
    return False


def bad_request(request: HttpRequest, sentence: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": sentence}, status=400)
    return HttpResponse(render_to_string("400.html", {"message": sentence}), status=400)


class RejectMalformedInputMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            return bad_request(request, NUL_SENTENCE)
        if huge := _huge_parameter(request):
            return bad_request(request, f"The number in “{huge[:40]}” is out of range.")
        if _api_body_not_an_object(request):
            return bad_request(request, "The request body must be a JSON object.")
        return self.get_response(request)
