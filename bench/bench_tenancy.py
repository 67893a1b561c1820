"""Tenancy overhead benchmark: what RLS + tenant context cost, measured against no tenancy in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_x .venv/bin/python bench/bench_tenancy.py [--requests 400]

Builds a private database `<db>_tbench` (control plane migrated, templates), one tenant
of each isolation level with MEMBERS members, plus NEIGHBOURS other tenants in the
same pool (so RLS has rows to filter), and `bench_plain_member`: a copy of the pool's
member rows in a plain table (no RLS, same indexes). Then prints:

1. Requests/s of the signed-in workspace members page (`/members/`, full middleware,
   host → tenant resolution, tenant settings, RLS) vs the same page with no tenancy
   (same middleware, same template, same paginated query on the plain table
   filtered to the same rows, same session-row read and member lookup), for each isolation
   level, in --rounds rounds (within a round one request of each variant in turn, order rotated); the ratio per round too (min, p10,
   median, rounds meeting 0.90). Target: overhead ≤ 10% in every run.
2. The RLS-protected list query vs the same query with an explicit WHERE tenant_id on
   the plain table (per-query time, app role, same connection). Target: within 10%.
3. EXPLAIN of the RLS query: an index condition on tenant_id.

Variants are interleaved in rounds so drift hits all of them alike; medians over rounds
are printed. Drops what it made.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
import types
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas_admin.settings.development")
os.environ["DJANGO_DEBUG"] = "0"  # DEBUG keeps every query in memory and renders differently

MEMBERS = 300
NEIGHBOURS = 20
PASSWORD = "bench-member-password-1"


def setup_database(suffix: str = "_tbench") -> str:
    from bench.harness import setup_database as fresh_database  # after sys.path names the project

    return fresh_database(suffix)


def make_tenants() -> dict:
    from tenants.context import tenant_context
    from tests.support.tenancy import provision
    from workspace.models import Member

    def fill(tenant, n):
        with tenant_context(tenant) as alias:
            owner = Member(name="Bench Owner", email=f"owner@{tenant.slug}.test", is_admin=True)
            owner.set_password(PASSWORD)
            owner.save(using=alias)
            Member.objects.using(alias).bulk_create(
                Member(name=f"Person {i:04d}", email=f"p{i}@{tenant.slug}.test", password="") for i in range(n - 1)
            )

    tenants = {}
    for isolation in ("shared", "schema", "dedicated"):
        tenant = provision(isolation, f"bench-{isolation}")  # the real provisioning saga, run in-process
        fill(tenant, MEMBERS)
        tenants[isolation] = tenant
    for i in range(NEIGHBOURS):
        fill(provision("shared", f"neighbour-{i}"), MEMBERS)
    return tenants


def build_plain_table(pool_schema: str) -> None:
    """A copy of every member row in the pool, without RLS, with the same indexes."""
    import psycopg
    from django.db import connections
    from psycopg import sql

    from core import dbroles

    with psycopg.connect(**dbroles.conninfo(connections.settings["owner"]), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.bench_plain_member")
        conn.execute(
            sql.SQL("CREATE TABLE public.bench_plain_member (LIKE {}.workspace_member INCLUDING ALL)").format(
                sql.Identifier(pool_schema)
            )
        )
        conn.execute("ALTER TABLE public.bench_plain_member NO FORCE ROW LEVEL SECURITY")
        conn.execute("ALTER TABLE public.bench_plain_member DISABLE ROW LEVEL SECURITY")
        # The owner is subject to FORCE'd RLS too: copy tenant by tenant under each one's setting.
        tenant_ids = [r[0] for r in conn.execute("SELECT id FROM public.tenants_tenant WHERE placement_id IS NOT NULL")]
        for tenant_id in tenant_ids:
            with conn.transaction():
                conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(tenant_id)])
                conn.execute(
                    sql.SQL("INSERT INTO public.bench_plain_member SELECT * FROM {}.workspace_member").format(
                        sql.Identifier(pool_schema)
                    )
                )
        conn.execute("ANALYZE public.bench_plain_member")
        conn.execute(sql.SQL("ANALYZE {}.workspace_member").format(sql.Identifier(pool_schema)))


def install_baseline_urls(tenant) -> None:
    """The same page without tenancy: a view on the operator host reading the plain table."""
    from django.conf import settings
    from django.core.paginator import Paginator
    from django.db import models
    from django.shortcuts import render
    from django.urls import include, path

    from workspace.forms import MemberForm

    class PlainMember(models.Model):
        tenant_id = models.UUIDField()
        name = models.CharField(max_length=200)
        email = models.EmailField()
        password = models.CharField(max_length=128)
        is_admin = models.BooleanField()
        is_active = models.BooleanField()
        created_at = models.DateTimeField()

        class Meta:
            app_label = "saas_admin"
            managed = False
            db_table = "bench_plain_member"

        def __str__(self) -> str:
            return self.name

    owner_id = PlainMember.objects.get(tenant_id=tenant.pk, email=f"owner@{tenant.slug}.test").pk  # type: ignore[attr-defined]

    from django.contrib.sessions.backends.db import SessionStore

    # The tenant page reads its member's session row from the database (workspace.sessions); so does
    # the baseline, from the control plane's django_session (the operator host's cookie differs).
    session = SessionStore()
    session["workspace_member"] = owner_id
    session.create()
    session_key = session.session_key

    def baseline(request):
        # What member_required + member_list do, minus tenancy: session read, member lookup, page, render.
        SessionStore(session_key).get("workspace_member")
        request.tenant = tenant
        request.member = PlainMember.objects.filter(pk=owner_id, is_active=True).first()
        qs = PlainMember.objects.filter(tenant_id=tenant.pk).order_by("name", "id")
        page = Paginator(qs, 25).get_page(request.GET.get("page"))
        context = {"page": page, "q": "", "form": MemberForm(), "section": "members"}
        return render(request, "workspace/members.html", context)

    module = types.ModuleType("bench_tenancy_urls")
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("__bench_baseline__/", baseline),
        path("", include("workspace.urls")),  # so {% url 'workspace:…' %} reverses in the template
    ]
    sys.modules["bench_tenancy_urls"] = module
    settings.ROOT_URLCONF = "bench_tenancy_urls"


def signed_in_client(tenant):
    from django.test import Client

    client = Client(HTTP_HOST=f"{tenant.slug}.localhost")
    response = client.post("/login/", {"email": f"owner@{tenant.slug}.test", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    return client


def measure_pages(tenants: dict, requests: int, rounds: int = 10) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Median over rounds of each variant's requests/s, and each tenant variant's ratio to no tenancy
    per round; requests of all variants interleave one by one, so drift hits them alike."""
    from django.test import Client

    clients = {iso: signed_in_client(t) for iso, t in tenants.items()}
    baseline = Client(HTTP_HOST="localhost")
    # A copy, so a cookie the baseline's response sets can never sign the shared tenant's client out
    # (it did: the shared variant then timed a redirect to the sign-in page).
    baseline.cookies = copy.deepcopy(clients["shared"].cookies)
    for client in clients.values():
        assert b"Person 0000" in client.get("/members/").content
    assert b"Person 0000" in baseline.get("/__bench_baseline__/").content
    variants = {f"tenant:{iso}": (c, "/members/") for iso, c in clients.items()}
    variants["no tenancy"] = (baseline, "/__bench_baseline__/")
    rates: dict[str, list[float]] = {name: [] for name in variants}
    per_round = max(1, requests // rounds)
    names = list(variants)
    for client, url in variants.values():
        client.get(url)  # warm
    for r in range(rounds):
        # One request of each variant in turn (order rotated), so a burst of load from elsewhere on the
        # machine lands on every variant alike instead of on whichever block it happened to hit.
        spent = dict.fromkeys(names, 0.0)
        order = names[r % len(names) :] + names[: r % len(names)]
        for _ in range(per_round):
            for name in order:
                client, url = variants[name]
                start = time.perf_counter()
                client.get(url)
                spent[name] += time.perf_counter() - start
        for name in names:
            rates[name].append(per_round / spent[name])
    for name, (client, url) in variants.items():  # every variant still served the real page
        response = client.get(url)
        assert response.status_code == 200 and b"Person 0000" in response.content, (name, response.status_code)
    ratios = {
        name: [rate / base for rate, base in zip(values, rates["no tenancy"], strict=True)]
        for name, values in rates.items()
        if name != "no tenancy"
    }
    return {name: statistics.median(values) for name, values in rates.items()}, ratios


def measure_queries(tenant, iterations: int, rounds: int = 5) -> tuple[float, float, str]:
    from django.db import connections

    from tenants.context import tenant_context

    rls_sql = "SELECT id, name, email FROM workspace_member ORDER BY name, id LIMIT 25"
    plain_sql = "SELECT id, name, email FROM public.bench_plain_member WHERE tenant_id = %s ORDER BY name, id LIMIT 25"
    rls_times: list[float] = []
    plain_times: list[float] = []
    with tenant_context(tenant) as alias:
        cursor = connections[alias].cursor()
        cursor.execute("EXPLAIN " + rls_sql)
        plan = "\n".join(r[0] for r in cursor.fetchall())
        cursor.execute(rls_sql)
        assert len(cursor.fetchall()) == 25
        cursor.execute(plain_sql, [tenant.pk])
        assert len(cursor.fetchall()) == 25
        for _ in range(rounds):
            for sql_text, params, bucket in ((rls_sql, None, rls_times), (plain_sql, [tenant.pk], plain_times)):
                start = time.perf_counter()
                for _ in range(iterations // rounds):
                    cursor.execute(sql_text, params)
                    cursor.fetchall()
                bucket.append((time.perf_counter() - start) / (iterations // rounds))
    return statistics.median(rls_times), statistics.median(plain_times), plan


def teardown(bench: str) -> None:
    from bench.harness import teardown as drop_bench  # after sys.path names the project

    drop_bench(bench)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per variant")
    parser.add_argument("--rounds", type=int, default=40, help="rounds (each runs every variant once)")
    parser.add_argument("--queries", type=int, default=3000, help="queries per variant")
    args = parser.parse_args()
    bench = setup_database()
    try:
        print(f"bench database {bench}: building tenants ({MEMBERS} members each, {NEIGHBOURS} pool neighbours)")
        tenants = make_tenants()
        build_plain_table(tenants["shared"].placement.schema_name)
        install_baseline_urls(tenants["shared"])
        rates, ratios = measure_pages(tenants, args.requests, args.rounds)
        base = rates["no tenancy"]
        print(
            f"\n1. Workspace members page, requests/s ({args.requests} per variant in {args.rounds} rounds, "
            "in-process WSGI, signed in)"
        )
        print(f"   {'no tenancy (plain table)':32s} {base:8.1f} req/s   1.000")
        for iso in ("shared", "schema", "dedicated"):
            rate, per_round = rates[f"tenant:{iso}"], sorted(ratios[f"tenant:{iso}"])
            print(
                f"   {'tenant, ' + iso:32s} {rate:8.1f} req/s   {rate / base:.3f}  overhead {100 * (base / rate - 1):+.1f}%"
                f"   per round: min {per_round[0]:.3f} p10 {per_round[len(per_round) // 10]:.3f}"
                f" median {statistics.median(per_round):.3f}, {sum(r >= 0.9 for r in per_round)}/{len(per_round)} ≥ 0.90"
            )
        rls, plain, plan = measure_queries(tenants["shared"], args.queries)
        print(f"\n2. List query (25 rows of {MEMBERS} for one tenant among {NEIGHBOURS + 1} in the pool), per query")
        print(f"   explicit WHERE tenant_id, no RLS  {plain * 1e6:8.1f} µs   1.000")
        print(
            f"   RLS (tenant context)             {rls * 1e6:8.1f} µs   {rls / plain:.3f}  overhead {100 * (rls / plain - 1):+.1f}%"
        )
        print("\n3. EXPLAIN of the RLS query:")
        print("   " + plan.replace("\n", "\n   "))
        print(f"   index condition on tenant_id: {'yes' if 'Index Cond: (tenant_id = ' in plan else 'NO'}")
    finally:
        teardown(bench)
    return 0


if __name__ == "__main__":
    sys.exit(main())
