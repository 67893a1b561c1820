"""python manage.py provision_tenant SLUG --isolation {shared,schema,dedicated} [--name NAME] [--owner-email EMAIL] [--no-wait]

Prints progress, then the tenant's uuid on the last line. Bad input or a
failed step: one line on stderr, exit status 1, nothing left behind.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tenant
from tenants.provisioning import ProvisioningError


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
        # Runs the provisioning saga (tenants/sagas.py) through Celery; see docs/sagas.md.
        from tenants.sagas import provisioning_run_command

        try:
            tenant_id = provisioning_run_command(
                slug=options["slug"],
                name=options["name"],
                isolation=options["isolation"],
                plan=options["plan"],
                owner_email=options["owner_email"],
                wait=not options["no_wait"],
                progress=self.stderr.write,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        except ProvisioningError as exc:
            raise CommandError(str(exc))
        self.stdout.write(str(tenant_id))
