"""The overview tile: open and overdue data-subject requests (30-day clock)."""

from __future__ import annotations

from typing import Any

from core.overview import Panel, register_panel
from core.permissions import Role
from privacy.selectors import request_counts


@register_panel("privacy", order=70, min_role=Role.VIEWER)
def privacy_panel(request: Any) -> Panel:
    return Panel("privacy/_overview_panel.html", {"counts": request_counts()})
