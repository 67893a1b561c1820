"""manage.py auditor_grant USERNAME [--revoke]: make a user a read-only Auditor (or stop it)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from compliance import registers
from core.actors import SystemActor
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Grant (or --revoke) the read-only Auditor role: compliance, audit trail and event log only."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--revoke", action="store_true")

    def handle(self, *args, username, revoke=False, **options):
        try:
            user = registers.auditor_grant(
                username=username, actor=SystemActor("manage.py auditor_grant"), revoke=revoke
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{'Revoked' if revoke else 'Granted'} Auditor access for {user.username}.")
