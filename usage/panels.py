"""The overview's "top tenants" panel: by requests (24 h), storage and storage growth (7 days)."""

from __future__ import annotations

from django.http import HttpRequest

from core.overview import Panel, register_panel
from usage import selectors


@register_panel("usage", order=30)
def usage_panel(request: HttpRequest) -> Panel:
    return Panel(
        "usage/_overview_panel.html",
        {
            "requests": selectors.top_tenants(by="requests", limit=5),
            "storage": selectors.top_tenants(by="storage", limit=5),
            "growth": selectors.top_tenants(by="growth", limit=5),
        },
        wide=True,
    )
