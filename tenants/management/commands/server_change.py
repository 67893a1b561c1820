"""python manage.py server_change NAME [--capacity N] [--levels shared,schema,dedicated]

Changes a registered server's capacity and the isolation levels it takes
(tenants.servers.server_change, audited as server.change); what is not given stays. Placements
already there stay. Bad input, an unknown server or no change: one line on stderr, exit 1, nothing
saved.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.actors import SystemActor
from core.errors import ApplicationError
from tenants.management.commands.server_add import parse_levels
from tenants.models import Server
from tenants.servers import LEVEL_FLAGS, server_change


class Command(BaseCommand):
    help = "Change a server's capacity and the isolation levels it takes."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")
        parser.add_argument("--capacity", type=int, help="Placements the server may hold.")
        parser.add_argument("--levels", help="Isolation levels it takes, comma-separated.")

    def handle(self, *args: Any, **options: Any) -> None:
        server = Server.objects.filter(name=options["name"]).first()
        if server is None:
            raise CommandError(f"There is no server named {options['name']}.")
        flags: dict[str, Any] = {}  # no --levels: the levels stay
        if options["levels"] is not None:
            levels = parse_levels(options["levels"])
            flags = {flag: level in levels for level, flag in LEVEL_FLAGS.items()}
        try:
            server = server_change(
                server=server, capacity=options["capacity"], **flags, actor=SystemActor("manage.py server_change")
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{server.name}: capacity {server.capacity:,}, takes {', '.join(server.levels)}")
