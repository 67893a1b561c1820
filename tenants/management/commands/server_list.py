"""python manage.py server_list — the registered PostgreSQL servers, one line each: name, address,
state, levels, placements / capacity, and the last health reading (no server is probed here)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tenants.servers import server_list


class Command(BaseCommand):
    help = "List the registered database servers with their last health reading."

    def handle(self, *args: Any, **options: Any) -> None:
        for s in server_list():
            health = s.health  # type: ignore[attr-defined]
            if health is None:
                seen = "not checked yet"
            elif health.reachable:
                seen = f"reachable {health.latency_ms} ms, {health.backends}/{health.max_connections} backends"
            else:
                seen = f"unreachable: {health.error}"
            self.stdout.write(
                f"{s.name}\t{s.address}\t{s.state}\t{','.join(s.levels)}\t{s.placements_count}/{s.capacity}\t{seen}"  # type: ignore[attr-defined]
            )
