"""The audit trail's overview panel: recent actions and a 14-day activity chart (see core/overview.py)."""

from __future__ import annotations

from django.http import HttpRequest

from audit.selectors import audit_activity_by_day, audit_recent
from core.overview import Panel, register_panel


@register_panel("audit", order=90)
def audit_panel(request: HttpRequest) -> Panel:
    return Panel(
        "dashboard/panels/audit.html",
        {"recent": audit_recent(8), "activity": audit_activity_by_day(14)},
        wide=True,
    )
