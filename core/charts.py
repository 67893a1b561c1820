"""Series for the small charts on operator screens."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone


def daily_counts(queryset: QuerySet[Any], field: str, *, days: int = 14) -> list[tuple[date, int]]:
    """Rows per local day of `field` for the last `days` days (oldest first), zero-filled: chart series."""
    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    tz = timezone.get_current_timezone()
    counts = dict(
        queryset.filter(**{f"{field}__gte": datetime.combine(start, time.min, tzinfo=tz)})
        .annotate(day=TruncDate(field, tzinfo=tz))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    return [(start + timedelta(days=i), counts.get(start + timedelta(days=i), 0)) for i in range(days)]


def fill_days(values: dict[date, Any], *, days: int, end: date | None = None) -> list[tuple[date, Any]]:
    """A value per day for the `days` days ending `end` (today), oldest first, zero where missing: chart series
    from rollups that skip quiet days."""
    end = end or timezone.localdate()
    start = end - timedelta(days=days - 1)
    return [(start + timedelta(days=i), values.get(start + timedelta(days=i), 0)) for i in range(days)]
