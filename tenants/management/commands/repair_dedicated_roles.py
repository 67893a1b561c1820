"""python manage.py repair_dedicated_roles — give old dedicated databases their own login roles.

Dedicated databases created before per-database roles still let the shared owner, app and
data-plane roles connect, and their placements hold the shared credentials. This gives each its own
owner and app roles, revokes the shared ones and stores the new credentials (tenants/dedicated_roles.py).
Safe to run twice and after an interrupted run; restart the web and worker processes afterwards.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core.actors import SystemActor
from tenants.dedicated_roles import dedicated_roles_repair


class Command(BaseCommand):
    help = "Give every dedicated database that still uses the shared database roles its own login roles."

    def handle(self, *args: Any, **options: Any) -> None:
        result = dedicated_roles_repair(actor=SystemActor("repair_dedicated_roles"))
        for name in result.repaired:
            self.stdout.write(f"{name}: own login roles created, shared roles revoked")
        self.stdout.write(
            f"repaired {len(result.repaired)} dedicated database(s); {result.current} already had their own roles"
        )
