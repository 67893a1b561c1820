"""The dashboard shell's own overview panels: health and operators (see core/overview.py)."""

from __future__ import annotations

from django.http import HttpRequest

from core.overview import Panel, register_panel
from saas_admin.health import broker_status, database_status
from saas_admin.selectors import operator_counts_by_role


@register_panel("health", order=10)
def health_panel(request: HttpRequest) -> Panel:
    db_ok, db_detail = database_status()
    broker_ok, broker_detail = broker_status()
    return Panel(
        "dashboard/panels/health.html",
        {
            "checks": [
                {"name": "Database", "ok": db_ok, "detail": db_detail},
                {"name": "Broker", "ok": broker_ok, "detail": broker_detail},
            ]
        },
    )


@register_panel("operators", order=50)
def operators_panel(request: HttpRequest) -> Panel:
    counts = operator_counts_by_role()
    return Panel("dashboard/panels/operators.html", {"counts": counts, "total": sum(counts.values())})
