"""manage.py compliance_export --framework F --format {zip,csv,json,oscal} --out FILE [--from DATE --to DATE]."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from compliance import exports, selectors
from core.errors import ApplicationError


def _day(value: str | None, end: bool) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from None
    return datetime.combine(day, time.max if end else time.min, tzinfo=timezone.get_current_timezone())


class Command(BaseCommand):
    help = "Export a framework report: the auditor bundle (zip), CSV or JSON."

    def add_arguments(self, parser):
        parser.add_argument("--framework", required=True)
        parser.add_argument("--format", dest="fmt", choices=["zip", "csv", "json", "oscal"], default="zip")
        parser.add_argument("--out", required=True)
        parser.add_argument("--from", dest="date_from", default=None)
        parser.add_argument("--to", dest="date_to", default=None)

    def handle(self, *args, framework, fmt, out, date_from=None, date_to=None, **options):
        try:
            found = selectors.framework_get(framework)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        start, end = _day(date_from, False), _day(date_to, True)
        if start and end and start > end:
            raise CommandError("--from must be on or before --to.")
        data = exports.export_bytes(found, fmt, period_from=start, period_to=end)
        Path(out).write_bytes(data)
        self.stdout.write(f"Wrote {out} ({len(data)} bytes, SHA-256 {exports.sha256(data)}).")
