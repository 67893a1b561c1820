"""The tenants tile on the operator overview (see saas_admin/overview.py)."""

from __future__ import annotations

from django.http import HttpRequest

from core.charts import daily_counts
from core.overview import Panel, register_panel
from tenants import selectors
from tenants.models import Tenant
from tenants.servers import server_list


@register_panel("tenants", order=60)  # after health (10) and operators (50), before activity (90)
def tenants_panel(request: HttpRequest) -> Panel:
    by_status = selectors.tenant_counts_by_status()
    return Panel(
        "tenants/_overview_panel.html",
        {
            "totals": selectors.tenant_totals(),
            "by_status": [
                (value, label, by_status[value]) for value, label in Tenant.Status.choices if value in by_status
            ],
            "created": daily_counts(Tenant.objects.all(), "created_at"),
        },
        wide=True,
    )


@register_panel("servers", order=65)  # next to the tenants tile
def servers_panel(request: HttpRequest) -> Panel:
    """Per server: what the last health job found (tenants.servers); nothing is probed here."""
    return Panel("tenants/_servers_panel.html", {"servers": server_list()}, wide=True)
