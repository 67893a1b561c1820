"""Plan quotas and per-plan database limits, read by the data plane (workspace) and the usage app.

Quotas live in settings (`USAGE_PLAN_QUOTAS`, `USAGE_PLAN_DB_SETTINGS`, overridable as JSON from the
environment), not in a control-plane table: a request on a tenant's host runs as the data-plane role,
which may not read control-plane tables, yet the workspace must enforce its plan. The plan travels
with the tenant context (`core.tenancy.ActiveTenant.plan`). `None` means no limit.

    quota_for("free", "members")      # 5
    quota_sentence("members", 5)      # "Your plan allows 5 members; …"
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from core import tenancy

QUOTAS = ("members", "storage_bytes", "requests_per_minute", "events_per_day")
LABELS = {
    "members": "members",
    "storage_bytes": "storage",
    "requests_per_minute": "API requests per minute",
    "events_per_day": "events per day",
}
# Warnings to operators (and an email to the owner) when a figure reaches these shares of its quota.
WARNING_LEVELS = (80, 100)


def plan_quotas(plan: str) -> dict[str, int | None]:
    configured: dict[str, Any] = settings.USAGE_PLAN_QUOTAS.get(plan, {})
    return {name: (int(configured[name]) if configured.get(name) is not None else None) for name in QUOTAS}


def quota_for(plan: str, name: str) -> int | None:
    return plan_quotas(plan).get(name)


def current_plan() -> str:
    active = tenancy.active_tenant()
    return active.plan if active else ""


def human(name: str, value: int | float) -> str:
    if name == "storage_bytes":
        size = float(value)
        for unit in ("bytes", "KB", "MB", "GB", "TB"):
            if size < 1024 or unit == "TB":
                return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
            size /= 1024
    return f"{int(value):,}"


def quota_sentence(name: str, limit: int) -> str:
    """The one sentence a tenant sees when a quota refuses something."""
    if name == "members":
        return f"Your plan allows {limit:,} members; remove a member or upgrade the plan to add another."
    if name == "storage_bytes":
        return (
            f"Your workspace has used its {human(name, limit)} of storage; delete data or upgrade the plan to add more."
        )
    if name == "events_per_day":
        return f"Your plan allows {limit:,} ledger operations per day; try again tomorrow or upgrade the plan."
    return f"Your plan allows {limit:,} requests per minute; wait a moment and try again."


def db_settings_for(plan: str) -> dict[str, str]:
    """statement_timeout / work_mem for a plan's tenant transactions (tenants.context applies them)."""
    configured: dict[str, Any] = settings.USAGE_PLAN_DB_SETTINGS.get(plan, {})
    return {name: str(configured[name]) for name in ("statement_timeout", "work_mem") if configured.get(name)}
