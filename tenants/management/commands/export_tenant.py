"""python manage.py export_tenant SLUG [--out FILE]

Exports one tenant (every TENANT_APPS row and its event log) through a `tenants.export` job — run by a
worker, or in this process when none claims it within 10 s — and copies the file to FILE. Prints the
export's id on the last line; bad input or a failed export: one line on stderr, exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.actors import SystemActor
from core.errors import ApplicationError
from tenants.exports.services import tenant_export_and_wait
from tenants.management.lookup import tenant_named


class Command(BaseCommand):
    help = "Export a tenant to a portable file; prints the export's id last."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slug")
        parser.add_argument("--out", default="", help="Where to copy the export file (a .zip).")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"]
        tenant = tenant_named(slug)
        out = Path(options["out"]) if options["out"] else None
        if out is not None and not out.parent.is_dir():
            raise CommandError(f"The folder {out.parent} does not exist.")
        try:
            export = tenant_export_and_wait(
                tenant=tenant, actor=SystemActor("manage.py export_tenant"), out=out, progress=self.stderr.write
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(export.pk))
