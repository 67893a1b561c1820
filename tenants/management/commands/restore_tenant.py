"""python manage.py restore_tenant FILE [--as SLUG] [--isolation {shared,schema,dedicated}]
python manage.py restore_tenant FILE --in-place [--confirm SLUG]

Into a new tenant (default): checks the file first (format version, signature, every table's SHA-256
and row count; a damaged, edited or unknown file is refused with one sentence and nothing is created),
provisions the tenant (slug and level default to the export's) and loads its rows. In place: replaces
the rows of the tenant the export was made of, after a restore point (an export) is taken; the slug
must be typed (or given with --confirm). Prints the tenant's uuid (new) or the restore job's id (in
place) on the last line; errors: one line on stderr, exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from jobs.models import Job
from tenants.exports import format
from tenants.exports.jobs import exports_dir
from tenants.exports.services import COMMAND, group_wait, tenant_restore_in_place, tenant_restore_new
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Restore a tenant export into a new tenant, or in place."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file")
        parser.add_argument("--as", dest="slug", default="", help="Slug of the new tenant (default: the export's).")
        parser.add_argument("--isolation", default="", choices=["", *Tenant.Isolation.values])
        parser.add_argument("--in-place", action="store_true", help="Replace the exported tenant's rows.")
        parser.add_argument("--confirm", default=None, help="The tenant's slug, instead of typing it.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if "\x00" in options["file"] or not path.is_file():
            raise CommandError(f"There is no file {options['file'][:200]!r}.")
        try:
            if options["in_place"]:
                self._in_place(path, options["confirm"])
                return
            tenant = tenant_restore_new(
                path=path, slug=options["slug"], isolation=options["isolation"], progress=self.stderr.write
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(tenant.pk))

    def _in_place(self, path: Path, confirm: str | None) -> None:
        opened = format.open_export(path)
        tenant = Tenant.objects.filter(pk=opened.tenant["id"]).first()
        if tenant is None:
            raise CommandError(f"The tenant {opened.tenant['slug']} no longer exists; restore without --in-place.")
        if confirm is None:
            confirm = input(f"This replaces every row of {tenant.slug}. Type its slug to confirm: ")
        job = tenant_restore_in_place(tenant=tenant, confirm=confirm, actor=COMMAND, path=path)
        group_wait((job.group_type, job.group_id), 10.0)
        job.refresh_from_db()
        (exports_dir() / job.payload["file_name"]).unlink(missing_ok=True)  # the copy staged for the workers
        if job.state != Job.State.SUCCEEDED:
            raise CommandError(f"The restore failed: {(job.error or job.state).splitlines()[0]}")
        self.stderr.write(f"restored {job.result.get('rows', 0)} rows into {tenant.slug}")
        self.stdout.write(str(job.pk))
