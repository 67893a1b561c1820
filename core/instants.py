"""Parsing instants typed by people (filters, `--at`, the ledger's "balance on date X")."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime


def parse_instant(value: str) -> dt.datetime | None:
    """ISO 8601 date or date-time; naive values are in UTC; a bare date is the end of that day. None on bad input."""
    value = value.strip()
    try:
        day = parse_date(value)  # a bare date means the end of that day: "balance on date X"
    except ValueError:
        return None
    if day is not None:
        return dt.datetime(day.year, day.month, day.day, 23, 59, 59, 999999, tzinfo=dt.UTC)
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)
    return moment
