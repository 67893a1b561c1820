"""python manage.py delete_tenant SLUG [--grace SECONDS] [--no-wait]

Schedules the tenant's deletion (it goes `deleting` at once; restorable until the grace period
ends, TENANCY_DELETE_GRACE_SECONDS by default). With `--grace 0` and without `--no-wait` it runs the
deletion saga to its end and prints what was destroyed. Prints the deletion's id on the last line;
bad input: one line on stderr, exit 1.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from tenants.management.lookup import tenant_named
from tenants.offboarding.services import tenant_delete_and_wait


class Command(BaseCommand):
    help = "Delete a tenant (after a grace period during which it can be restored); prints the deletion's id last."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slug")
        parser.add_argument("--grace", type=int, default=None, help="Seconds the tenant stays restorable.")
        parser.add_argument("--no-wait", action="store_true", help="Return once the deletion is scheduled.")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"]
        tenant = tenant_named(slug)
        try:
            deletion = tenant_delete_and_wait(
                tenant=tenant, grace_seconds=options["grace"], wait=not options["no_wait"], progress=self.stderr.write
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(deletion.pk))
