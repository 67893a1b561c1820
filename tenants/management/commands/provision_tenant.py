"""python manage.py provision_tenant SLUG --isolation {shared,schema,dedicated} [--name NAME] [--owner-email EMAIL] [--no-wait]

Prints progress, then the tenant's uuid on the last line. Bad input or a
failed step: one line on stderr, exit status 1, nothing left behind.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from tenants.models import Tenant
from tenants.provisioning.services import tenant_provision_and_wait


class Command(BaseCommand):
    help = "Create and provision a tenant of the given isolation level; prints its uuid last."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slug")
        parser.add_argument("--isolation", required=True, choices=Tenant.Isolation.values)
        parser.add_argument("--name", default="")
        parser.add_argument("--owner-email", default="")
        parser.add_argument("--plan", default=Tenant.Plan.FREE, choices=Tenant.Plan.values)
        parser.add_argument(
            "--no-wait", action="store_true", help="Return once the saga is started; a Celery worker finishes it."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Runs the provisioning saga (tenants/provisioning/) through Celery; see docs/sagas.md.
        try:
            tenant_id = tenant_provision_and_wait(
                slug=options["slug"],
                name=options["name"],
                isolation=options["isolation"],
                plan=options["plan"],
                owner_email=options["owner_email"],
                wait=not options["no_wait"],
                progress=self.stderr.write,
            )
        except ApplicationError as exc:  # bad input, or a saga that was rolled back: one line
            raise CommandError(str(exc)) from None
        self.stdout.write(str(tenant_id))
