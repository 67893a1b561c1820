"""python manage.py aggregate_state AGGREGATE_TYPE AGGREGATE_ID [--tenant SLUG] [--at ISO8601]"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from core.errors import InvalidInput
from core.instants import parse_instant
from events.logs import log_for
from events.store import EventStoreError


class Command(BaseCommand):
    help = "Print an aggregate's state (latest, or at --at) as JSON, from the control-plane log or a tenant's log."

    def add_arguments(self, parser):
        parser.add_argument("aggregate_type")
        parser.add_argument("aggregate_id")
        parser.add_argument("--tenant", help="Slug of the tenant whose log holds the aggregate.")
        parser.add_argument("--at", help="ISO 8601 instant (or date: end of that day, UTC).")

    def handle(self, *args, aggregate_type, aggregate_id, tenant=None, at=None, **options):
        moment = None
        if at:
            moment = parse_instant(at)
            if moment is None:
                raise CommandError(f"--at {at!r} is not an ISO 8601 date or date-time.")
        try:
            store = log_for(tenant or "").store  # a tenant's log is resolved by the tenants app
            result = store.state_at(aggregate_type, aggregate_id, moment)
        except (InvalidInput, EventStoreError) as exc:
            raise CommandError(str(exc)) from None
        if result.version == 0:
            when = f" at {moment.isoformat()}" if moment else ""
            raise CommandError(f"{aggregate_type} {aggregate_id} has no events{when}.")
        self.stdout.write(json.dumps(result.as_dict(), sort_keys=True, default=str, indent=2))
