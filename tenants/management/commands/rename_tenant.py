"""python manage.py rename_tenant SLUG NEW_SLUG [--domain HOST] [--no-wait]

Renames a tenant (tenants/rename.py): slug and primary domain at once, the old host redirecting for
TENANCY_RENAME_REDIRECT_DAYS; a schema or dedicated tenant's storage follows through a move to the
same level, which the command waits for like `move_tenant` (progress on stderr). Prints the tenant's
id on the last line. Bad input or a rolled-back move: one line on stderr, exit 1.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.actors import SystemActor
from core.errors import ApplicationError
from tenants.management.lookup import tenant_named
from tenants.moves.services import move_follow
from tenants.rename import tenant_rename

COMMAND = SystemActor("manage.py rename_tenant")


class Command(BaseCommand):
    help = "Rename a tenant (slug, primary domain, schema or database name); prints the tenant's id last."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slug")
        parser.add_argument("new_slug")
        parser.add_argument("--domain", default="", help="The new primary domain (default: NEW_SLUG.BASE_DOMAIN).")
        parser.add_argument(
            "--no-wait", action="store_true", help="Return once the storage move is started; a worker finishes it."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"]
        tenant = tenant_named(slug)
        try:
            renamed, move = tenant_rename(
                tenant=tenant, new_slug=options["new_slug"], domain=options["domain"], actor=COMMAND
            )
            self.stderr.write(f"{slug} is now {renamed.slug}")
            if move is not None:
                self.stderr.write(f"moving its storage to the new name: move {move.pk}")
                if not options["no_wait"]:
                    move_follow(move=move, progress=self.stderr.write)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(renamed.pk))
