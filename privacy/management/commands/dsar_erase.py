"""python manage.py dsar_erase TENANT EMAIL [--no-wait]

Starts the erasure saga (privacy/erasure.py) for the subject in the tenant (slug). Without
--no-wait it drives the saga's jobs in this process until it settles and prints the proof's
SHA-256; a legal hold, or a failed verification, is one line on stderr and exit status 1.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.actors import SystemActor
from core.errors import ApplicationError
from privacy.models import ErasureProof, RequestKind
from privacy.services import request_open
from sagas.models import SagaState
from sagas.services import saga_run_inline
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Erase one data subject of one tenant by crypto-shredding (a saga with a verification scan)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("tenant", help="The tenant's slug.")
        parser.add_argument("email")
        parser.add_argument("--no-wait", action="store_true", help="Return once the saga is started.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.select_related("placement").filter(slug=options["tenant"][:40]).first()
        if tenant is None:
            raise CommandError("No tenant with that slug.")
        try:
            opened = request_open(
                tenant=tenant,
                email=options["email"],
                kind=RequestKind.ERASURE,
                actor=SystemActor("manage.py dsar_erase"),
                source="command",
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        if options["no_wait"]:
            self.stdout.write(f"request {opened.pk} saga {opened.saga_id}")
            return
        saga = saga_run_inline(saga_id=opened.saga_id, timeout=600)
        if saga.state != SagaState.COMPLETED:
            raise CommandError(
                f"The erasure did not complete: {saga.error.splitlines()[0] if saga.error else saga.state}"
            )
        proof = ErasureProof.objects.get(request_id=opened.pk)
        self.stdout.write(f"erased; proof sha256={proof.proof_sha256}")
