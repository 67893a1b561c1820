"""`/metrics` for Prometheus: computed from the control plane's own tables at scrape time.

Labels are bounded by construction: saga types and states, isolation levels, migration job kinds,
job kinds and states (registered sets), plans, and the slugs of the top N tenants only
(`TOP_N`), never one series per tenant. Access: `Authorization: Bearer <METRICS_TOKEN>` or a client
address inside `METRICS_ALLOWED_NETWORKS`; with neither configured the URL answers 404, so it is
never open by accident.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from core.http import client_ip
from jobs.models import Job
from sagas.models import Saga
from usage import selectors

TOP_N = 10
PROVISIONING_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300)
MIGRATION_BUCKETS_MS = (100, 500, 1000, 5000, 15000, 60000, 300000)


def _histogram(
    values_sql: str, params: list[Any], buckets: tuple[float, ...]
) -> dict[str, tuple[list[int], float, int]]:
    """label → (cumulative counts per bucket, sum, count) from rows (label, value) selected by `values_sql`."""
    selects = ", ".join(f"count(*) FILTER (WHERE v <= {float(b)})" for b in buckets)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT label, {selects}, coalesce(sum(v), 0), count(*) FROM ({values_sql}) s GROUP BY label", params
        )
        rows = cursor.fetchall()
    return {row[0]: (list(row[1 : 1 + len(buckets)]), float(row[-2]), int(row[-1])) for row in rows}


class ControlPlaneCollector(Collector):
    def collect(self) -> Iterator[Any]:
        sagas = GaugeMetricFamily("controlplane_sagas", "Sagas by type and state.", labels=["saga_type", "state"])
        for row in Saga.objects.values("saga_type", "state").annotate(n=Count("id")).order_by():
            sagas.add_metric([row["saga_type"], row["state"]], row["n"])
        yield sagas

        provisioning = HistogramMetricFamily(
            "controlplane_provisioning_seconds",
            "Completed provisioning sagas: seconds from request to active, per isolation level.",
            labels=["isolation"],
        )
        data = _histogram(
            "SELECT substr(saga_type, 11) AS label, extract(epoch FROM finished_at - created_at) AS v FROM sagas_saga "
            "WHERE saga_type LIKE 'provision.%%' AND state = 'completed' AND finished_at IS NOT NULL",
            [],
            PROVISIONING_BUCKETS,
        )
        for isolation, (counts, total, n) in sorted(data.items()):
            buckets = [(floatToGoString(b), c) for b, c in zip(PROVISIONING_BUCKETS, counts, strict=True)] + [
                ("+Inf", n)
            ]
            provisioning.add_metric([isolation], buckets, total)
        yield provisioning

        migrations = HistogramMetricFamily(
            "controlplane_migration_job_seconds", "Cross-tenant migration targets: duration per kind.", labels=["kind"]
        )
        data = _histogram(
            "SELECT kind AS label, duration_ms::float AS v FROM migration_runs_migrationjob WHERE duration_ms IS NOT NULL",
            [],
            MIGRATION_BUCKETS_MS,
        )
        for kind, (counts, total, n) in sorted(data.items()):
            buckets = [(floatToGoString(b / 1000), c) for b, c in zip(MIGRATION_BUCKETS_MS, counts, strict=True)] + [
                ("+Inf", n)
            ]
            migrations.add_metric([kind], buckets, total / 1000)
        yield migrations

        queue = GaugeMetricFamily(
            "controlplane_jobs_open", "Open jobs of the job engine (what Celery has to do) by kind and state.",
            labels=["kind", "state"],
        )  # fmt: skip
        for row in Job.objects.filter(state__in=Job.OPEN).values("kind", "state").annotate(n=Count("id")).order_by():
            queue.add_metric([row["kind"], row["state"]], row["n"])
        yield queue

        per_plan = {
            name: GaugeMetricFamily(f"controlplane_usage_{name}", help_text, labels=["plan"])
            for name, help_text in (
                ("storage_bytes", "Storage of all tenants per plan (pool tenants estimated)."),
                ("members", "Members of all tenants per plan."),
                ("requests_24h", "Requests to tenant hosts in the last 24 hours per plan."),
                ("events", "Events in tenant logs per plan."),
            )
        }
        for row in selectors.totals_by_plan():
            per_plan["storage_bytes"].add_metric([row["plan"]], row["storage"] or 0)
            per_plan["members"].add_metric([row["plan"]], row["members"] or 0)
            per_plan["requests_24h"].add_metric([row["plan"]], row["requests"] or 0)
            per_plan["events"].add_metric([row["plan"]], row["events"] or 0)
        yield from per_plan.values()

        top_storage = GaugeMetricFamily(
            "controlplane_top_tenant_storage_bytes", f"The {TOP_N} largest tenants by storage.", labels=["tenant"]
        )
        for state in selectors.top_tenants(by="storage", limit=TOP_N):
            top_storage.add_metric([state.tenant.slug], state.storage_bytes)
        yield top_storage
        top_requests = GaugeMetricFamily(
            "controlplane_top_tenant_requests_24h", f"The {TOP_N} busiest tenants by requests in 24 hours.",
            labels=["tenant"],
        )  # fmt: skip
        for state in selectors.top_tenants(by="requests", limit=TOP_N):
            top_requests.add_metric([state.tenant.slug], state.requests_24h)
        yield top_requests


def allowed(request: HttpRequest) -> bool | None:
    """True/False for this request; None when /metrics is not configured at all."""
    token = settings.METRICS_TOKEN
    networks = settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return None
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    address = client_ip(request)
    if networks and address:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)
    return False


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    verdict = allowed(request)
    if verdict is None:
        return HttpResponse("Not found.", status=404, content_type="text/plain")
    if not verdict:
        return HttpResponse("A metrics token or an allowed network is required.", status=403, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ControlPlaneCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
