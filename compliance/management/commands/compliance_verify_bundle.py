"""manage.py compliance_verify_bundle FILE: recompute every hash of an auditor bundle; exit 1 if any differs."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compliance import exports


class Command(BaseCommand):
    help = "Verify an auditor bundle: every file against manifest.json, every evidence file against its SHA-256."

    def add_arguments(self, parser):
        parser.add_argument("bundle")

    def handle(self, *args, bundle, **options):
        path = Path(bundle)
        if not path.is_file():
            raise CommandError(f"{bundle} is not a file.")
        problems = exports.bundle_verify(path.read_bytes())
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"The bundle does not verify: {len(problems)} problems.")
        self.stdout.write("The bundle verifies: every file matches the manifest and every evidence its SHA-256.")
