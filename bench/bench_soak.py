"""PgBouncer soak: web and worker processes interleave tenants of every level through PgBouncer in
transaction mode; counts cross-tenant rows (must be 0) and the server backends held.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_x .venv/bin/python bench/bench_soak.py \
        [--operations 10000 --web 2 --workers 2 --budget 2]

Builds a private database `<db>_soak` (control plane migrated) with two tenants of each isolation
level (members seeded), starts PgBouncer (`pool_mode = transaction`, `default_pool_size = 4`, every
database through `* =`), then the processes under test, all against PgBouncer only (`DB_PGBOUNCER=1`:
no server-side prepared statements) with `TENANCY_SERVER_CONNECTION_BUDGET = --budget ×
TENANCY_DEDICATED_POOL_MAX`, so the dedicated aliases churn through the least-recently-used policy:

- --web web processes: `manage.py runserver --noreload --nothreading` (one request at a time, like a
  sync gunicorn worker), each driven over real HTTP by a load process that signs in on every
  tenant's host (CSRF token, session cookie) and GETs /members/ — the autocommit read path;
- --workers Celery workers (`celery worker --include bench.soak_tasks`, concurrency 1) on a private
  filesystem broker, running `bench.soak_unit` tasks: a tenant_context unit with an ORM read, a raw
  SQL read and, every tenth, a write in a transaction.

Half the operations are HTTP requests, half worker tasks. Each operation picks a tenant at random
and checks every row it sees belongs to that tenant. A sampler counts the server's backends on the
soak databases. Prints operations, cross-tenant rows, errors, and the peak backends next to
PgBouncer's cap (default_pool_size per database and user). Drops what it made. Needs `pgbouncer`
(apt-get install pgbouncer).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
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


# --- web load ---------------------------------------------------------------------------------------


def _request(port: int, host: str, method: str, path: str, cookies: dict[str, str], form: dict | None = None):
    """One HTTP request to a web process as a browser on `host` would send it; keeps its cookies."""
    headers = {"Host": host}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        content = response.read().decode(errors="replace")
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, content
    finally:
        conn.close()


def web_load(port: int, operations: int, seed: int) -> None:
    """A browser per tenant against one web process: sign in on each tenant's host, then GET /members/."""
    import django

    django.setup()
    from tenants.models import Tenant
    from tests.support.tenancy import MEMBER_PASSWORD

    tenants = list(Tenant.objects.filter(status="active").values_list("slug", flat=True))
    rng = random.Random(seed)
    cross = errors = done = 0
    jars: dict[str, dict[str, str]] = {}
    for slug in tenants:
        jar: dict[str, str] = {}
        host = f"{slug}.localhost:{port}"
        _, page = _request(port, host, "GET", "/login/", jar)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        form = {
            "email": f"owner@{slug}.test",
            "password": MEMBER_PASSWORD,
            "csrfmiddlewaretoken": token[1] if token else "",
        }
        status, _ = _request(port, host, "POST", "/login/", jar, form)
        assert status == 302, (slug, status)
        jars[slug] = jar
    for _ in range(operations):
        slug = rng.choice(tenants)
        try:
            status, page = _request(port, f"{slug}.localhost:{port}", "GET", "/members/", jars[slug])
            if status != 200 or f"@{slug}.test" not in page:
                errors += 1
            cross += sum(f"@{other}.test" in page for other in tenants if other != slug)
            done += 1
        except Exception as exc:  # counted and reported, the soak goes on
            errors += 1
            print(f"web error: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
    print(json.dumps({"role": "web", "done": done, "cross": cross, "errors": errors}))


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a web process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"no web process listening on {port}")


# --- parent ---------------------------------------------------------------------------------------


def prepare() -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas_admin.settings.development")
    os.environ["DJANGO_DEBUG"] = "0"
    from bench.harness import setup_database  # after sys.path names the project

    return setup_database("_soak", templates=False)


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
    from bench.harness import teardown as drop_bench  # after sys.path names the project

    drop_bench(soak)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=10_000, help="in total, web requests and worker tasks")
    parser.add_argument("--web", type=int, default=2, help="web processes (runserver --nothreading, one each)")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (concurrency 1 each)")
    parser.add_argument("--budget", type=int, default=1, help="dedicated aliases per server per process")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--web-load", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.web_load:
        web_load(args.web_load, args.operations, args.seed)
        return 0
    bouncer = None
    children: list[subprocess.Popen] = []
    soak = prepare()
    broker_dir = Path(tempfile.mkdtemp(prefix="soak-broker-"))
    try:
        tenants = make_tenants(args.members)
        from django.conf import settings
        from django.db import connections

        from core import dbroles
        from tenants.crypto import decrypt_json
        from tests.support.workers import PrivateBroker, spawn_celery

        server = settings.DATABASES["default"]
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
        broker = PrivateBroker("filesystem://", prefix="soak-broker-")
        broker.attach()  # this process publishes the worker tasks
        env = {
            **os.environ,
            **broker.publisher_env(),
            "DATABASE_URL": url,
            "DB_PGBOUNCER": "1",
            "DJANGO_SETTINGS_MODULE": "saas_admin.settings.development",
            "DJANGO_DEBUG": "0",
            "TENANCY_SERVER_CONNECTION_BUDGET": str(args.budget * settings.TENANCY_DEDICATED_POOL_MAX),
        }
        web_each = args.operations // 2 // max(1, args.web) if args.workers else args.operations // max(1, args.web)
        tasks_total = args.operations - web_each * args.web if args.workers else 0
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

        ports = [_free_port() for _ in range(args.web)]
        for web_port in ports:  # one single-threaded WSGI process each, like a sync gunicorn worker
            children.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "runserver", f"127.0.0.1:{web_port}", "--noreload", "--nothreading"],
                    cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=open(broker_dir / f"web-{web_port}.log", "wb"),
                )
            )  # fmt: skip
        for i in range(args.workers):
            children.append(
                spawn_celery(
                    ["worker", "-l", "warning", "--pool", "prefork", "--concurrency", "1", "--include",
                     "bench.soak_tasks", "--without-gossip", "--without-mingle", "-n", f"soak{i}@%h"],
                    env=env, log=broker_dir / f"worker-{i}.log",
                )
            )  # fmt: skip
        for web_port, proc in zip(ports, children, strict=False):
            _wait_port(web_port, proc)
        for conn in connections.all():  # this process holds nothing on the soak databases while it samples
            conn.close()
            if conn.settings_dict.get("OPTIONS", {}).get("pool"):
                conn.close_pool()  # type: ignore[attr-defined]  # the PostgreSQL backend's pool
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        from bench.soak_tasks import soak_unit

        results_file = broker_dir / "tasks.jsonl"
        rng = random.Random(args.seed)
        t0 = time.perf_counter()
        for i in range(tasks_total):  # published first: the workers drain them while the web load runs
            soak_unit.delay(str(rng.choice(tenants).pk), i, str(results_file))
        loads = [
            subprocess.Popen(
                [sys.executable, __file__, "--web-load", str(web_port), "--operations", str(web_each), "--seed", str(i)],
                env=env,
                stdout=subprocess.PIPE, text=True,
            )
            for i, web_port in enumerate(ports)
        ]  # fmt: skip
        results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in loads]
        deadline = time.monotonic() + 600
        lines: list[str] = []
        while time.monotonic() < deadline:
            lines = results_file.read_text().splitlines() if results_file.exists() else []
            if len(lines) >= tasks_total:
                break
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
        outcomes = [json.loads(line) for line in lines]
        if tasks_total:
            results.append(
                {
                    "role": "worker",
                    "done": len(outcomes),
                    "cross": sum(o["cross"] for o in outcomes),
                    "errors": sum(o["errors"] for o in outcomes) + tasks_total - len(outcomes),
                }
            )
        dedicated = sum(t.placement.is_dedicated for t in tenants)
        cap = POOL_SIZE * (2 + dedicated)  # control database × (app, data-plane role) + each dedicated × its app role
        print(
            f"PgBouncer transaction mode, default_pool_size {POOL_SIZE}; {len(tenants)} tenants (2 per level); "
            f"{args.web} web processes (runserver --nothreading, real HTTP), {args.workers} Celery workers"
        )
        for r in results:
            print(f"   {r['role']:<7} operations {r['done']:>6}  cross-tenant rows {r['cross']}  errors {r['errors']}")
        total = sum(r["done"] for r in results)
        print(f"   {total} operations in {wall:.1f} s ({total / wall:.0f}/s), cross-tenant rows: "
              f"{sum(r['cross'] for r in results)}, errors: {sum(r['errors'] for r in results)}")  # fmt: skip
        print(f"   peak server backends on the soak databases: {peak['backends']} (PgBouncer's cap: {POOL_SIZE} per "
              f"database and role = {cap}; without it each process could hold its own pools)")  # fmt: skip
        for database, user, n in peak["by"]:
            print(f"     {database} as {user}: {n}")
        broker.close()
        return 0 if sum(r["cross"] for r in results) == 0 and sum(r["errors"] for r in results) == 0 else 1
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()  # Celery's main process shuts its pool down warm
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        if bouncer is not None:
            bouncer.terminate()
            bouncer.wait(timeout=10)
        shutil.rmtree(broker_dir, ignore_errors=True)
        teardown(soak)


if __name__ == "__main__":
    sys.exit(main())
