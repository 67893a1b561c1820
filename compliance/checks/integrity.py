"""Checks about records being complete and untampered: event hash chains, the audit trail, sign-in reviews."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone
from psycopg import sql

from audit.actions import AuditAction
from audit.models import AuditEntry
from compliance.checks.registry import Outcome, check
from compliance.models import ChainCheckpoint
from events.services import control_store
from events.store import EventStore
from tenants.logs import tenant_log_store
from tenants.models import Tenant

# Every event after the log's checkpoint: its hash recomputed, its link to the previous version of its
# stream (looked up by key, so the previous event may lie before the checkpoint), and no version gap.
VERIFY_SINCE = """
SELECT e.event_id, e.tx_id::text, e.aggregate_type, e.aggregate_id, e.version,
       e.hash = events_hash(e.prev_hash, e.aggregate_type, e.aggregate_id, e.version, e.event_type, e.event_version,
                            e.event_data, e.event_metadata, e.occurred_at, e.causation_id, e.correlation_id,
                            e.tenant_id, e.event_uuid),
       e.prev_hash IS NOT DISTINCT FROM p.hash,
       e.version = 1 OR p.event_id IS NOT NULL,
       e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
  FROM {table} e
  LEFT JOIN {table} p ON p.aggregate_type = e.aggregate_type AND p.aggregate_id = e.aggregate_id
                     AND p.version = e.version - 1 {same_tenant}
 WHERE (e.tx_id, e.event_id) > (%s::text::xid8, %s) {tenant_filter}
 ORDER BY e.tx_id, e.event_id
"""


def verify_log(store: EventStore, log: str, *, full: bool = False) -> dict[str, Any]:
    """Verify one log from its checkpoint, or from its first event when `full` or when its last full
    verification is older than COMPLIANCE_CHAIN_FULL_HOURS (so an old event changed behind the
    triggers' back is found within that time); advance the checkpoint past every event that verified
    and that no open transaction can still precede."""
    checkpoint = ChainCheckpoint.objects.filter(log=log).first()
    stale = timezone.now() - timedelta(hours=float(settings.COMPLIANCE_CHAIN_FULL_HOURS))
    full = full or checkpoint is None or checkpoint.full_verified_at is None or checkpoint.full_verified_at < stale
    start = (0, 0) if full else (checkpoint.tx_id, checkpoint.event_id)  # type: ignore[union-attr]  # not None here
    statement = sql.SQL(VERIFY_SINCE).format(
        table=store.table,
        same_tenant=sql.SQL("AND p.tenant_id = e.tenant_id" if store.tenant_scoped else ""),
        tenant_filter=sql.SQL("AND e.tenant_id = %s" if store.tenant_scoped else ""),
    )
    params: list[Any] = [str(start[0]), start[1]] + ([store.tenant_id] if store.tenant_scoped else [])
    broken, checked, settled = [], 0, start
    with store.session() as alias, connections[alias].cursor() as cursor:
        cursor.execute(statement, params)
        for event_id, tx_id, a_type, a_id, version, hash_ok, link_ok, sequence_ok, is_settled in cursor.fetchall():
            checked += 1
            if not (hash_ok and link_ok and sequence_ok):
                problem = "hash mismatch" if not hash_ok else ("broken link" if not link_ok else "missing version")
                broken.append(
                    {
                        "log": log,
                        "event_id": event_id,
                        "stream": f"{a_type}/{a_id}",
                        "version": version,
                        "problem": problem,
                    }
                )
            elif is_settled and not broken:
                settled = (int(tx_id), event_id)
    if not broken and (settled != start or full):
        now = timezone.now()
        defaults: dict[str, Any] = {"tx_id": settled[0], "event_id": settled[1], "verified_at": now}
        if full:
            defaults["full_verified_at"] = now
        ChainCheckpoint.objects.update_or_create(log=log, defaults=defaults)
    return {"log": log, "from_event": start[1], "full": full, "checked": checked, "broken": broken}


@check("event_chains")
def event_chains() -> Outcome:
    """Proves the control plane's event log and every tenant's own log verify: each event's SHA-256 hash
    recomputes from its content and its predecessor's hash, and no stream skips a version. It works
    incrementally from each log's verified checkpoint (compliance.ChainCheckpoint), so an hourly run
    reads only what was appended since; a broken chain keeps the checkpoint where it was, so the
    failure repeats until someone deals with it.

    Evidence: per log the events checked and the first broken events, named by id and stream."""
    logs = [verify_log(control_store(), "control")]
    tenants = Tenant.objects.filter(placement__isnull=False).exclude(status=Tenant.Status.DELETED).order_by("slug")
    for tenant in tenants:
        try:
            logs.append(verify_log(tenant_log_store(tenant), f"tenant:{tenant.pk}"))
        except Exception as exc:  # one unreachable placement is reported, the other logs still verify
            logs.append({"log": f"tenant:{tenant.pk}", "checked": 0, "broken": [], "error": str(exc)[:300]})
    broken = [b for entry in logs for b in entry["broken"]]
    unreadable = [entry["log"] for entry in logs if entry.get("error")]
    evidence = {
        "logs": len(logs),
        "events_checked": sum(entry["checked"] for entry in logs),
        "broken": broken[:100],
        "unreadable": unreadable,
        "per_log": [entry for entry in logs if entry["checked"] or entry["broken"] or entry.get("error")][:200],
    }
    if broken or unreadable:
        first = broken[0] if broken else None
        detail = (
            f" First: event {first['event_id']} ({first['stream']} v{first['version']}, {first['problem']})."
            if first
            else ""
        )
        return Outcome.failed(
            f"{len(broken)} events fail verification and {len(unreadable)} logs could not be read.{detail}", **evidence
        )
    return Outcome.passed(
        f"{len(logs)} event logs verify ({evidence['events_checked']} new events checked since their checkpoints).",
        **evidence,
    )


@check("audit_retention")
def audit_retention() -> Outcome:
    """Proves the audit trail is on and kept: it recorded something within the last day of activity,
    the runtime role cannot UPDATE, DELETE or TRUNCATE it (so nothing ages out by hand), and its
    oldest entry reaches back to the retention period (COMPLIANCE_AUDIT_RETENTION_DAYS) or to the
    start of the system.

    Evidence: the table's privileges for the app role, the oldest and newest entries, the policy."""
    retention = int(settings.COMPLIANCE_AUDIT_RETENTION_DAYS)
    table = AuditEntry._meta.db_table
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT has_table_privilege(current_user, %s, 'UPDATE'), has_table_privilege(current_user, %s, 'DELETE'),"
            " has_table_privilege(current_user, %s, 'TRUNCATE'), has_table_privilege(current_user, %s, 'INSERT')",
            [table] * 4,
        )
        can_update, can_delete, can_truncate, can_insert = cursor.fetchone()
    oldest = AuditEntry.objects.order_by("occurred_at").values_list("occurred_at", flat=True).first()
    newest = AuditEntry.objects.order_by("-occurred_at").values_list("occurred_at", flat=True).first()
    problems = []
    if not can_insert:
        problems.append("the runtime role cannot write the audit trail")
    for name, allowed in (("UPDATE", can_update), ("DELETE", can_delete), ("TRUNCATE", can_truncate)):
        if allowed:
            problems.append(f"the runtime role may {name} audit entries")
    if newest is None:
        problems.append("the audit trail is empty")
    evidence = {
        "retention_days": retention,
        "privileges": {"insert": can_insert, "update": can_update, "delete": can_delete, "truncate": can_truncate},
        "oldest": oldest.isoformat() if oldest else None,
        "newest": newest.isoformat() if newest else None,
        "covers_days": (timezone.now() - oldest).days if oldest else 0,
    }
    return Outcome.judged(
        problems,
        f"The audit trail is append-only for the runtime role and kept for {retention} days.",
        "{n} audit-trail problems: " + "; ".join(problems) + ".",
        **evidence,
    )


@check("signin_review")
def signin_review() -> Outcome:
    """Proves every spike of failed or refused sign-ins (COMPLIANCE_SIGNIN_SPIKE failures for one username
    or one address within an hour) in the last 30 days was reviewed: an Admin recorded a sign-in
    review (`compliance.signin_review`) after it.

    Evidence: the spikes (hour, username or address, count) and the last review."""
    threshold = int(settings.COMPLIANCE_SIGNIN_SPIKE)
    since = timezone.now() - timedelta(days=30)
    failures = AuditEntry.objects.filter(
        action__in=[AuditAction.AUTH_LOGIN_FAILED, AuditAction.AUTH_LOGIN_BLOCKED], occurred_at__gte=since
    ).values_list("occurred_at", "actor_label", "ip_address")
    buckets: Counter[tuple[str, str, str]] = Counter()
    for occurred_at, label, address in failures.iterator():
        hour = occurred_at.replace(minute=0, second=0, microsecond=0).isoformat()
        buckets[(hour, "username", label)] += 1
        if address:
            buckets[(hour, "address", str(address))] += 1
    spikes: list[dict[str, Any]] = [
        {"hour": hour, "by": by, "who": who, "failures": n}
        for (hour, by, who), n in sorted(buckets.items())
        if n >= threshold
    ]
    last_review = (
        AuditEntry.objects.filter(action=AuditAction.COMPLIANCE_SIGNIN_REVIEW).order_by("-occurred_at").first()
    )
    reviewed_until = last_review.occurred_at if last_review else None
    # An hour that started before the review but ended after it was only partly reviewed: it counts too.
    cutoff = reviewed_until.isoformat()[:13] if reviewed_until else ""
    unreviewed = [s for s in spikes if str(s["hour"]) >= cutoff]
    return Outcome.judged(
        unreviewed,
        f"{len(spikes)} failed sign-in spikes in 30 days, all reviewed.",
        "{n} failed sign-in spikes were not reviewed.",
        threshold=threshold,
        spikes=spikes[:200],
        last_review=(
            {"by": last_review.actor_label, "at": last_review.occurred_at.isoformat()} if last_review else None
        ),
    )
