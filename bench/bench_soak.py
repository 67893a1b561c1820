"""PgBouncer soak: web and worker processes interleave tenants of every level through PgBouncer in
transaction mode; counts cross-tenant rows (must be 0) and the server backends held.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_x .venv/bin/python bench/bench_soak.py \
        [--operations 10000 --web 2 --workers 2 --budget 2]

Builds a private database `<db>_soak` (control plane migrated) with two tenants of each isolation
level (members seeded), starts PgBouncer (`pool_mode = transaction`, `default_pool_size = 4`, every
database through `* =`), then runs --web processes (Django's WSGI handler in-process via the test
Client, signed in on each tenant's host, GET /members/ — the autocommit read path) and --workers
processes (tenant_context units as Celery tasks run them: ORM read, raw SQL read, a write in a
transaction) against PgBouncer only (`DB_PGBOUNCER=1`: no server-side prepared statements), with
`TENANCY_SERVER_CONNECTION_BUDGET = --budget × TENANCY_DEDICATED_POOL_MAX`, so the dedicated aliases
churn through the least-recently-used policy. Each operation picks a tenant at random and checks every
row it sees belongs to that tenant. A sampler counts the server's backends on the soak databases.
Prints operations, cross-tenant rows, errors, and the peak backends next to PgBouncer's cap
(default_pool_size per database and user). Drops what it made. Needs `pgbouncer` (apt-get install
pgbouncer).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
POOL_SIZE = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_pgbouncer(host: str, port: str, users: list[tuple[str, str]]) -> tuple[subprocess.Popen, int, str]:
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        raise SystemExit("pgbouncer is not installed (apt-get install pgbouncer)")
    listen = _free_port()
    workdir = tempfile.mkdtemp(prefix="soak-pgbouncer-")
    with open(os.path.join(workdir, "users.txt"), "w") as f:
        f.writelines(f'"{user}" "{password}"\n' for user, password in users)
    with open(os.path.join(workdir, "pgbouncer.ini"), "w") as f:
        f.write(
            f"[databases]\n* = host={host} port={port}\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {workdir}/users.txt\n"
            f"pool_mode = transaction\ndefault_pool_size = {POOL_SIZE}\nmax_client_conn = 500\n"
            "server_reset_query =\nignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {workdir}/pgbouncer.log\npidfile = {workdir}/pgbouncer.pid\n"
        )
    command = [binary, os.path.join(workdir, "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        os.chmod(workdir, 0o777)
        for name in ("users.txt", "pgbouncer.ini"):
            os.chmod(os.path.join(workdir, name), 0o644)
        command[1:1] = ["-u", "nobody"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", listen), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, listen, workdir


# --- child processes ------------------------------------------------------------------------------


def child(role: str, operations: int, seed: int) -> None:
    import django

    django.setup()
    from django.db import connections, transaction
    from django.test import Client

    from tenants.context import tenant_context
    from tenants.models import Tenant
    from tests.support.tenancy import MEMBER_PASSWORD
    from workspace.models import Member

    tenants = list(Tenant.objects.filter(status="active").select_related("placement"))
    others = {t.pk: [o.slug for o in tenants if o.pk != t.pk] for t in tenants}
    rng = random.Random(seed)
    cross = errors = done = 0
    clients = {}
    if role == "web":
        for t in tenants:
            client = Client(HTTP_HOST=f"{t.slug}.localhost")
            response = client.post("/login/", {"email": f"owner@{t.slug}.test", "password": MEMBER_PASSWORD})
            assert response.status_code == 302, (t.slug, response.status_code)
            clients[t.pk] = client
    for i in range(operations):
        tenant = rng.choice(tenants)
        try:
            if role == "web":
                response = clients[tenant.pk].get("/members/")
                page = response.content.decode()
                if response.status_code != 200 or f"@{tenant.slug}.test" not in page:
                    errors += 1
                cross += sum(f"@{slug}.test" in page for slug in others[tenant.pk])
            else:
                with tenant_context(tenant) as alias:
                    emails = list(Member.objects.using(alias).values_list("email", flat=True))
                    cross += sum(not e.endswith(f"@{tenant.slug}.test") for e in emails)
                    with connections[alias].cursor() as cursor:
                        cursor.execute("SELECT tenant_id FROM workspace_member")
                        cross += sum(row[0] != tenant.pk for row in cursor.fetchall())
                    if i % 10 == 0:  # a write in its own transaction, then seen only by its tenant
                        with transaction.atomic(using=alias):
                            member = Member.objects.using(alias).filter(email=f"owner@{tenant.slug}.test").first()
                            if member is None:
                                errors += 1
                            else:
                                member.name = f"Owner of {tenant.slug} #{i}"
                                member.save(using=alias, update_fields=["name"])
            done += 1
        except Exception as exc:  # counted and reported, the soak goes on
            errors += 1
            print(f"{role} error: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
    print(json.dumps({"role": role, "done": done, "cross": cross, "errors": errors}))


# --- parent ---------------------------------------------------------------------------------------


def prepare() -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas_admin.settings.development")
    os.environ["DJANGO_DEBUG"] = "0"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    from core import dbroles

    soak = f"{settings.DATABASES['default']['NAME']}_soak"
    for alias in ("default", "owner"):
        connections[alias].close()
        settings.DATABASES[alias]["NAME"] = soak
    dbroles.ensure_database(soak, recreate=True)
    call_command("migrate", database="owner", interactive=False, verbosity=0)
    return soak


def make_tenants(members: int) -> list:
    from tenants import placements
    from tests.support.tenancy import provision, seed_tenant, unique_slug

    placements.templates_rebuild()
    tenants = []
    for isolation in ("shared", "shared", "schema", "schema", "dedicated", "dedicated"):
        tenant = provision(isolation, unique_slug(f"soak-{isolation[:3]}"))
        seed_tenant(tenant, members=members)
        tenants.append(tenant)
    return tenants


def teardown(soak: str) -> None:
    from django.db import connections

    from core import dbroles

    for conn in connections.all():
        conn.close()
    with dbroles.admin_connect() as admin:
        names = [r[0] for r in admin.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [soak])]
    for name in names:
        dbroles.drop_database(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=10_000, help="in total, over every process")
    parser.add_argument("--web", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--budget", type=int, default=1, help="dedicated aliases per server per process")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--child", choices=["web", "worker"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.operations, args.seed)
        return 0
    bouncer = None
    soak = prepare()
    try:
        tenants = make_tenants(args.members)
        from django.conf import settings
        from django.db import connections

        from core import dbroles

        server = settings.DATABASES["default"]
        from tenants.crypto import decrypt_json

        users = [(settings.DB_APP_ROLE, settings.DB_APP_PASSWORD), (settings.DB_DATA_ROLE, settings.DB_DATA_PASSWORD)]
        for t in tenants:  # a dedicated database's own app role (PgBouncer's auth_file lists every user)
            if t.placement.is_dedicated:
                creds = decrypt_json(t.placement.credentials_encrypted)
                users.append((creds["app_user"], creds.get("app_password", "")))
        bouncer, port, workdir = start_pgbouncer(
            server.get("HOST") or "127.0.0.1", str(server.get("PORT") or 5432), users
        )
        base, _, _ = os.environ["DATABASE_URL"].rpartition("/")
        host_part = base.rsplit("@", 1)
        url = f"{host_part[0]}@127.0.0.1:{port}/{soak}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DB_PGBOUNCER": "1",
            "DJANGO_SETTINGS_MODULE": "saas_admin.settings.development",
            "DJANGO_DEBUG": "0",
            "TENANCY_SERVER_CONNECTION_BUDGET": str(args.budget * settings.TENANCY_DEDICATED_POOL_MAX),
        }
        roles = ["web"] * args.web + ["worker"] * args.workers
        each = args.operations // len(roles)
        peak: dict[str, Any] = {"backends": 0, "by": []}
        stop = threading.Event()

        def sample() -> None:
            with dbroles.admin_connect() as admin:
                while not stop.is_set():
                    rows = admin.execute(
                        "SELECT datname, usename, count(*) FROM pg_stat_activity"
                        " WHERE starts_with(datname, %s) AND pid <> pg_backend_pid() GROUP BY 1, 2",
                        [soak],
                    ).fetchall()
                    count = sum(n for _, _, n in rows)
                    if count > peak["backends"]:
                        peak["backends"], peak["by"] = count, sorted((d, u, n) for d, u, n in rows)
                    time.sleep(0.1)

        for conn in connections.all():  # this process holds nothing on the soak databases while it samples
            conn.close()
            if conn.settings_dict.get("OPTIONS", {}).get("pool"):
                conn.close_pool()  # type: ignore[attr-defined]  # the PostgreSQL backend's pool
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--child", role, "--operations", str(each), "--seed", str(i)],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i, role in enumerate(roles)
        ]
        results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
        dedicated = sum(t.placement.is_dedicated for t in tenants)
        cap = POOL_SIZE * (2 + dedicated)  # control database × (app, data-plane role) + each dedicated × its app role
        print(f"PgBouncer transaction mode, default_pool_size {POOL_SIZE}; {len(tenants)} tenants (2 per level)")
        for r in results:
            print(f"   {r['role']:<7} operations {r['done']:>6}  cross-tenant rows {r['cross']}  errors {r['errors']}")
        total = sum(r["done"] for r in results)
        print(f"   {total} operations in {wall:.1f} s ({total / wall:.0f}/s), cross-tenant rows: "
              f"{sum(r['cross'] for r in results)}, errors: {sum(r['errors'] for r in results)}")  # fmt: skip
        print(f"   peak server backends on the soak databases: {peak['backends']} (PgBouncer's cap: {POOL_SIZE} per "
              f"database and role = {cap}; without it each process could hold its own pools)")  # fmt: skip
        for database, user, n in peak["by"]:
            print(f"     {database} as {user}: {n}")
        return 0 if sum(r["cross"] for r in results) == 0 else 1
    finally:
        if bouncer is not None:
            bouncer.terminate()
            bouncer.wait(timeout=10)
        teardown(soak)


if __name__ == "__main__":
    sys.exit(main())
