"""Build a django-tenants deployment with django-tenants itself (bench/dt_settings.py), for the
import's tests and benchmark: `build(url, tenants)` runs, in a subprocess, its `migrate_schemas
--shared`, its tenant model's `create_schema` (its `migrate_schemas` of the tenant schema) and writes
the given rows inside its `schema_context` (session search_path: django-tenants' runtime).

`workspace` is migrated with bench/dt_workspace_migrations: our app as a django-tenants project has it
before adopting the control plane (no tenant_id, no RLS).

    build(url, [{"schema": "acme", "name": "Acme", "domains": ["acme.example"],
                 "members": [[name, email, password_hash, is_admin], ...], "accounts": [[name, balance], ...]}])
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import json, sys
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context
from bench.dt_tenants.models import Client, Domain
call_command("migrate_schemas", "--shared", verbosity=0)
for t in json.loads(sys.argv[1]):
    client, _ = Client.objects.get_or_create(schema_name=t["schema"], defaults={"name": t["name"]})
    if t["schema"] != "public":
        client.create_schema(check_if_exists=True, verbosity=0)
    for i, host in enumerate(t["domains"]):
        Domain.objects.get_or_create(domain=host, defaults={"tenant": client, "is_primary": i == 0})
    with schema_context(t["schema"]), connection.cursor() as cur:
        for name, email, password, admin in t.get("members", []):
            cur.execute("INSERT INTO workspace_member (name, email, password, is_admin, is_active, created_at) "
                        "VALUES (%s, %s, %s, %s, true, now())", [name, email, password, admin])
        for name, balance in t.get("accounts", []):
            cur.execute("INSERT INTO workspace_account (name, currency, balance, created_at) "
                        "VALUES (%s, 'EUR', %s, now())", [name, balance])
"""


def build(url: str, tenants: list[dict[str, Any]], *, owner_role: str, owner_password: str = "") -> None:
    """Run django-tenants against `url` (as `owner_role`); raises RuntimeError with its stderr on failure."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.dt_settings",
        "BENCH_DATABASE_URL": url,
        "DB_OWNER_ROLE": owner_role,
        "DB_OWNER_PASSWORD": owner_password,
        "DJANGO_MIGRATION_MODULES": json.dumps({"workspace": "bench.dt_workspace_migrations"}),
        "PYTHONPATH": str(BASE_DIR),
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(tenants)], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"django-tenants failed:\n{proc.stderr[-3000:]}")
