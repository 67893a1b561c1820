"""python manage.py import_django_tenants --database URL [--tenant-table T] [--domain-table T] [--dry-run]

Adopts a django-tenants deployment (tenants/adoption.py): each of its tenant schemas becomes a
schema-level tenant here, its rows copied; the source is only read. Progress and one line per
tenant on stderr; the uuid of each imported tenant on stdout, one per line. A source that cannot be
read, or any tenant that could not be imported: one line on stderr, exit 1 (the others are imported).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from tenants.adoption import django_tenants_import


class Command(BaseCommand):
    help = "Import the tenants of a django-tenants database as schema-level tenants; prints their uuids."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--database", required=True, help="postgres:// URL of the django-tenants database.")
        parser.add_argument("--tenant-table", default="", help="[schema.]table of its tenant model (found if omitted).")
        parser.add_argument("--domain-table", default="", help="[schema.]table of its domain model (found if omitted).")
        parser.add_argument("--dry-run", action="store_true", help="Only print what would be imported.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = django_tenants_import(
                url=options["database"], tenant_table=options["tenant_table"], domain_table=options["domain_table"],
                dry_run=options["dry_run"], progress=self.stderr.write,
            )  # fmt: skip
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        for tenant_id in report.imported:
            self.stdout.write(tenant_id)
        refused = report.refused
        if refused:
            names = ", ".join(p.schema for p in refused)
            raise CommandError(f"{len(refused)} django-tenants tenant(s) were not imported ({names}); see above why.")
        if options["dry_run"]:
            would = sum(1 for p in report.plans if p.action == "import")
            self.stdout.write(f"dry run: {would} tenant(s) would be imported, nothing was changed")
        elif not report.imported:
            self.stdout.write("nothing to import: every tenant was imported before or skipped")
