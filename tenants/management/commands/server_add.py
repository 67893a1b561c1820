"""python manage.py server_add NAME --host HOST [--port 5432] [--admin-user postgres] [--capacity N]
[--levels shared,schema,dedicated]

Registers a PostgreSQL server (tenants.servers.server_register): connects as the admin login (its
password from the SERVER_ADMIN_PASSWORD environment variable, never a command-line argument), creates
the project's roles and tenant-data database there, records it. Prints the server's id last; bad
input or an unreachable server: one line on stderr, exit 1, nothing saved.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.actors import SystemActor
from core.errors import ApplicationError
from tenants.servers import server_register

LEVELS = ("shared", "schema", "dedicated")


def parse_levels(text: str) -> set[str]:
    """--levels of server_add and server_change: a comma-separated, non-empty subset of LEVELS."""
    levels = {part.strip() for part in text.split(",") if part.strip()}
    if not levels or levels - set(LEVELS):
        raise CommandError(f"--levels takes a comma-separated subset of: {', '.join(LEVELS)}.")
    return levels


class Command(BaseCommand):
    help = "Register a PostgreSQL server placements may live on; prints its id last."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")
        parser.add_argument("--host", required=True)
        parser.add_argument("--port", default="5432")
        parser.add_argument("--admin-user", default="postgres")
        parser.add_argument("--capacity", type=int, default=1000, help="Placements the server may hold.")
        parser.add_argument("--levels", default=",".join(LEVELS), help="Isolation levels it takes, comma-separated.")

    def handle(self, *args: Any, **options: Any) -> None:
        levels = parse_levels(options["levels"])
        try:
            server = server_register(
                name=options["name"], host=options["host"], port=options["port"], admin_user=options["admin_user"],
                admin_password=os.environ.get("SERVER_ADMIN_PASSWORD", ""), capacity=options["capacity"],
                takes_shared="shared" in levels, takes_schema="schema" in levels,
                takes_dedicated="dedicated" in levels, actor=SystemActor("manage.py server_add"),
            )  # fmt: skip
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(server.pk))
