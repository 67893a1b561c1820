"""python manage.py limits_clear — forget every rate limit and sign-in lockout counter.

For local testing (a locked demo operator, a signup limit reached while trying things out). The
counters live in the shared `limits` and `tenant_limits` caches (core/limits.py), so clearing them
here clears them for every process. Prints what it cleared on its last line.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from django.core.management.base import BaseCommand

ALIASES = ("limits", "tenant_limits")


class Command(BaseCommand):
    help = "Clear every rate limit and sign-in lockout counter (operators and workspace members)."

    def handle(self, *args: Any, **options: Any) -> None:
        for alias in ALIASES:
            caches[alias].clear()
        self.stdout.write(f"cleared {', '.join(ALIASES)}")
