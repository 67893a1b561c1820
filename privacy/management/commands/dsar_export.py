"""python manage.py dsar_export TENANT EMAIL --out FILE

Opens an access request for the subject in the tenant (slug), runs its job through the job engine
in this process (a worker that claims it first is harmless: claims are exclusive), and copies the
ZIP to FILE. Bad input: one line on stderr, exit status 1.
"""

from __future__ import annotations

import shutil
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.actors import SystemActor
from core.errors import ApplicationError
from jobs.services import jobs_work_inline
from privacy.models import RequestKind, RequestStatus, SubjectRequest
from privacy.services import request_open
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Export everything about one data subject of one tenant as a ZIP (JSON, CSV, manifest)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("tenant", help="The tenant's slug.")
        parser.add_argument("email")
        parser.add_argument("--out", required=True, help="Where to write the ZIP.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.select_related("placement").filter(slug=options["tenant"][:40]).first()
        if tenant is None:
            raise CommandError("No tenant with that slug.")
        try:
            opened = request_open(
                tenant=tenant,
                email=options["email"],
                kind=RequestKind.ACCESS,
                actor=SystemActor("manage.py dsar_export"),
                source="command",
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        jobs_work_inline(group=("privacy.request", opened.pk), timeout=600)
        opened = SubjectRequest.objects.get(pk=opened.pk)
        if opened.status != RequestStatus.READY:
            raise CommandError(f"The export did not finish: {opened.error or opened.status}.")
        shutil.copyfile(opened.bundle_path, options["out"])
        self.stderr.write(f"request {opened.pk}: {opened.counts}")
        self.stdout.write(f"{options['out']} sha256={opened.bundle_sha256}")
