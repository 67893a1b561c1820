"""python manage.py move_tenant SLUG --to {shared,schema,dedicated} [--server NAME] [--no-wait]

Runs the move saga (tenants/moves/), printing progress and the write-freeze time on stderr and the
move's id on the last line. Bad input or a move that was rolled back: one line on stderr, exit 1.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from tenants.management.lookup import tenant_named
from tenants.models import Tenant
from tenants.moves.services import tenant_move_and_wait


class Command(BaseCommand):
    help = "Move a tenant to another isolation level (or another pool or database); prints the move's id last."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slug")
        parser.add_argument("--to", required=True, choices=Tenant.Isolation.values)
        parser.add_argument(
            "--server",
            default="",
            help="Registered database server for the target (`server_list`); default: the least full one.",
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="Return once the saga is started; a Celery worker finishes it."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"]
        tenant = tenant_named(slug)
        try:
            move = tenant_move_and_wait(
                tenant=tenant, to=options["to"], server=options["server"], wait=not options["no_wait"],
                progress=self.stderr.write,
            )  # fmt: skip
        except ApplicationError as exc:  # bad input, or a move that was rolled back: one line
            raise CommandError(str(exc)) from None
        self.stdout.write(str(move.pk))
