"""Reads of the audit trail: filtering, keyset pagination, export, overview numbers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.models import AuditEntry
from core.charts import daily_counts

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    target_type: str = ""
    target_id: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def is_empty(self) -> bool:
        return not any((self.actor, self.action, self.target_type, self.target_id, self.date_from, self.date_to))


def audit_filtered(filters: AuditFilters) -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.all()
    if filters.actor:
        qs = qs.filter(actor_label=filters.actor.strip())
    if filters.action:
        action = filters.action.strip()
        # "operator." or "operator" matches every operator.* action.
        qs = (
            qs.filter(action__startswith=action)
            if action.endswith(".")
            else qs.filter(Q(action=action) | Q(action__startswith=action + "."))
        )
    if filters.target_type:
        qs = qs.filter(target_type=filters.target_type.strip())
    if filters.target_id:
        qs = qs.filter(target_id=filters.target_id.strip())
    tz = timezone.get_current_timezone()
    if filters.date_from:
        qs = qs.filter(occurred_at__gte=datetime.combine(filters.date_from, time.min, tzinfo=tz))
    if filters.date_to:
        qs = qs.filter(occurred_at__lt=datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=tz))
    return qs


# --- Keyset pagination on (occurred_at, id), newest first -----------------------------


def encode_cursor(entry: AuditEntry) -> str:
    micros = (entry.occurred_at - EPOCH) // timedelta(microseconds=1)
    return f"{micros}-{entry.pk}"


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        micros, pk = cursor.split("-", 1)
        return EPOCH + timedelta(microseconds=int(micros)), int(pk)
    except (ValueError, OverflowError):
        return None


@dataclass
class AuditPage:
    entries: list[AuditEntry] = field(default_factory=list)
    older: str | None = None  # cursor for the next (older) page
    newer: str | None = None  # cursor for the previous (newer) page
    is_first: bool = True


def audit_page(filters: AuditFilters, *, before: str = "", after: str = "", size: int = 50) -> AuditPage:
    """One page of entries, newest first. `before`/`after` are cursors from a previous page.

    Keyset, not OFFSET: every page costs the same on a table of any size
    (index on occurred_at, id), and entries written meanwhile never shift a page.
    """
    qs = audit_filtered(filters)
    before_key = decode_cursor(before) if before else None
    after_key = decode_cursor(after) if after and not before_key else None
    if after_key:
        at, pk = after_key
        rows = list(
            qs.filter(Q(occurred_at__gt=at) | Q(occurred_at=at, id__gt=pk)).order_by("occurred_at", "id")[: size + 1]
        )
        has_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        page = AuditPage(entries=rows, is_first=not has_newer)
        page.newer = encode_cursor(rows[0]) if rows and has_newer else None
        page.older = encode_cursor(rows[-1]) if rows else None
        return page
    if before_key:
        at, pk = before_key
        qs = qs.filter(Q(occurred_at__lt=at) | Q(occurred_at=at, id__lt=pk))
    rows = list(qs.order_by("-occurred_at", "-id")[: size + 1])
    has_older = len(rows) > size
    rows = rows[:size]
    page = AuditPage(entries=rows, is_first=before_key is None)
    page.older = encode_cursor(rows[-1]) if rows and has_older else None
    page.newer = encode_cursor(rows[0]) if rows and before_key else None
    return page


def audit_export_rows(filters: AuditFilters) -> Iterator[AuditEntry]:
    return audit_filtered(filters).order_by("-occurred_at", "-id").iterator(chunk_size=2000)


def audit_known_actions() -> list[str]:
    """Action names for the filter's suggestions (distinct over an indexed column)."""
    return list(AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct()[:200])


def audit_recent(limit: int = 8) -> list[AuditEntry]:
    return list(AuditEntry.objects.order_by("-occurred_at", "-id")[:limit])


def audit_activity_by_day(days: int = 14) -> list[tuple[date, int]]:
    """Entries per day for the last `days` days (oldest first), zero-filled."""
    return daily_counts(AuditEntry.objects.all(), "occurred_at", days=days)
