"""Template helpers for the operator UI. `{% load ui %}`.

- `{% url_if_exists "tenants:list" as url %}` — the URL, or "" while that view doesn't exist.
- `{% nav_item "tenants:list" "Tenants" %}` — a nav link, only if the URL resolves; marked
  current when the request path is under it.
- `{{ some_datetime|ago }}` — "just now", "5 minutes ago", "2 days ago".
- `{{ value|status_badge }}` — `<span class="badge badge-<value>">Value</span>`.
- `{{ user|role_badge }}` — the operator's role as a badge.
- `{% bar_chart series unit="entries" label="Audit entries per day" %}` — a CSS bar chart of
  `[(label, value), …]` (labels may be dates).
- `{% progress done total failed=0 %}` — the `.progress` bar with an optional failed segment.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from core.permissions import operator_role

register = template.Library()


@register.simple_tag
def url_if_exists(name: str, *args: object) -> str:
    try:
        return reverse(name, args=args or None)
    except NoReverseMatch:
        return ""


@register.simple_tag(takes_context=True)
def nav_item(context: template.Context, name: str, label: str, exclude: str = "") -> str:
    """A sidebar link, current when the page is under its URL but not under `exclude`'s (a screen
    with its own link nested below this one's URL, e.g. Servers under /tenants/)."""
    url = url_if_exists(name)
    if not url:
        return ""
    request = context.get("request")
    path = getattr(request, "path", "")
    current = path == url if url == "/" else path.startswith(url)
    nested = url_if_exists(exclude) if exclude else ""
    if nested and path.startswith(nested):
        current = False
    return format_html(
        '<a class="nav-link{}" href="{}"{}>{}</a>',
        " is-current" if current else "",
        url,
        mark_safe(' aria-current="page"') if current else "",
        label,
    )


@register.filter
def ago(value: datetime | None) -> str:
    """ "just now", "5 minutes ago", "3 hours ago", "2 days ago": one unit, for tables and feeds."""
    if not value:
        return ""
    if timezone.now() - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value, depth=1)} ago"


@register.filter
def status_badge(value: object) -> str:
    text = str(value or "unknown")
    css = "".join(ch if ch.isalnum() else "-" for ch in text.lower())
    return format_html('<span class="badge badge-{}">{}</span>', css, text.replace("_", " ").capitalize())


@register.filter
def role_badge(user: object) -> str:
    role = operator_role(user)
    if role is None:
        return format_html('<span class="badge badge-role-none">{}</span>', "No role")
    return format_html('<span class="badge badge-role-{}">{}</span>', role.name.lower(), role.group_name)


@register.inclusion_tag("ui/bar_chart.html")
def bar_chart(series, unit: str = "", label: str = "") -> dict:
    """A CSS bar chart: each bar's height is its share of the largest value."""
    points = list(series)
    peak = max((value for _, value in points), default=0)
    bars = [
        {
            "value": value,
            "pct": round(100 * value / peak, 1) if peak else 0,
            "title": point_label.strftime("%a %b %-d") if isinstance(point_label, date) else str(point_label),
            "tick": point_label.strftime("%-d") if isinstance(point_label, date) else str(point_label)[:4],
        }
        for point_label, value in points
    ]
    return {"bars": bars, "unit": unit, "peak": peak, "label": label, "total": sum(v for _, v in points)}


@register.inclusion_tag("ui/progress.html")
def progress(done: int, total: int, failed: int = 0) -> dict:
    total = max(int(total or 0), 0)
    ok_pct = round(100 * done / total, 1) if total else 0
    failed_pct = round(100 * failed / total, 1) if total else 0
    return {"done": done, "total": total, "failed": failed, "ok_pct": ok_pct, "failed_pct": failed_pct}


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """`{{ labels|get_item:name }}`: a dict value by a variable key (None when missing)."""
    return mapping.get(key) if hasattr(mapping, "get") else None
