"""manage.py compliance_library_load [--library-version V]: load a version of the framework library (default: newest)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from compliance import library
from core.actors import SystemActor
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Load a compliance library version from compliance/library/ (earlier versions and results are kept)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--library-version", dest="library_version", default=None, help="Directory name; default: newest."
        )

    def handle(self, *args, library_version=None, **options):
        try:
            loaded = library.library_load(
                version=library_version, actor=SystemActor("manage.py compliance_library_load")
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        lib = loaded.library
        verb = "Loaded" if loaded.created else "Already loaded"
        self.stdout.write(
            f"{verb} library {lib.version} ({lib.frameworks.count()} frameworks, digest {lib.digest[:12]})."
        )
