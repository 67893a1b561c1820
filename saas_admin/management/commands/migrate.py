"""`migrate` defaults to the `owner` alias: the app role may not run DDL."""

from __future__ import annotations

from typing import Any

from django.core.management.commands.migrate import Command as MigrateCommand


class Command(MigrateCommand):
    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.set_defaults(database="owner")
