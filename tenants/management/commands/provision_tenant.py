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
            "--no-wait", action="store_true", help="Return once started (the in-process run always completes)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from tenants.services import tenant_provision_sync

        def on_step(step: Any) -> None:
            self.stderr.write(f"… {step.title}")

        try:
            tenant = tenant_provision_sync(
                slug=options["slug"],
                name=options["name"],
                isolation=options["isolation"],
                plan=options["plan"],
                owner_email=options["owner_email"],
                on_step=on_step,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        except ProvisioningError as exc:
            raise CommandError(str(exc))
        if tenant.owner_email:
            from workspace.services import member_set_password_url

            self.stderr.write(f"Owner sign-in link: {member_set_password_url(tenant, tenant.owner_email)}")
        self.stdout.write(str(tenant.pk))
