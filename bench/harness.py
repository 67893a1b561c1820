"""What every bench shares: a private database to build in, dropping it (and every database the bench
made next to it) at the end, an operator signed in with the second factor, percentiles.

A bench builds in `<DATABASE_URL's database><suffix>`; tenant databases it provisions are named after
it (`<bench>_t_<slug>`, the templates `<bench>_tenant_tpl`), so `teardown(bench)` drops everything
whose name starts with the bench database's name and nothing else.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas_admin.settings.development")


def setup_database(suffix: str, *, templates: bool = True, recreate: bool = True) -> str:
    """A fresh bench database `<db><suffix>` (control plane migrated, templates built unless told not to);
    both aliases point at it. Returns its name. `recreate=False` keeps one left by a `--keep` run."""
    import django
    from django.conf import settings
    from django.db import connections

    django.setup()
    from django.core.management import call_command

    from core import dbroles

    bench = f"{settings.DATABASES['default']['NAME']}{suffix}"
    for alias in ("default", "owner"):
        connections[alias].close()
        settings.DATABASES[alias]["NAME"] = bench
    dbroles.ensure_database(bench, recreate=recreate)
    call_command("migrate", database="owner", interactive=False, verbosity=0)
    if templates:
        from tenants import placements

        placements.templates_rebuild()
    return bench


def setup_database_for_subprocesses(suffix: str) -> str:
    """Like `setup_database`, for a bench whose subprocesses must reach the bench database too: DATABASE_URL
    in the environment names it, and Django is set up with the test settings. Returns its name."""
    from saas_admin.env import database_url

    base, _, name = database_url().rpartition("/")
    bench = f"{name.split('?')[0]}{suffix}"
    os.environ["DATABASE_URL"] = f"{base}/{bench}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "saas_admin.settings.test"
    import django

    django.setup()
    from django.core.management import call_command

    from core import dbroles
    from tenants import placements

    dbroles.ensure_database(bench, recreate=True)
    call_command("migrate", database="owner", interactive=False, verbosity=0)
    placements.templates_rebuild()
    return bench


def close_connections() -> None:
    """Close every connection of this process, and the pools behind them (a pooled connection would hold
    a backend on the database about to be dropped)."""
    from django.db import connections

    for conn in connections.all():
        conn.close()
        if conn.settings_dict.get("OPTIONS", {}).get("pool"):
            conn.close_pool()  # type: ignore[attr-defined]  # the PostgreSQL backend's pool


def bench_databases(bench: str) -> list[str]:
    """The bench database and every database named after it (its tenants' and templates)."""
    from core import dbroles

    with dbroles.admin_connect() as admin:
        rows = admin.execute(
            "SELECT datname FROM pg_database WHERE datname = %s OR starts_with(datname, %s)", [bench, bench + "_"]
        ).fetchall()
    return [name for (name,) in rows]


def teardown(bench: str) -> None:
    """Drop the bench database, every database named after it and their login roles."""
    from core import dbroles

    close_connections()
    for name in bench_databases(bench):
        dbroles.drop_database(name)
    # Provisioned dedicated databases had their own login roles (comment "dedicated:<database>").
    dbroles.drop_login_roles(*dbroles.roles_commented(f"dedicated:{bench}_"))


def operator_client(username: str = "bench_admin", role: str = "Admin") -> Any:
    """A Django test client signed in as an operator of `role` with the second factor satisfied."""
    from django.contrib.auth.models import Group, User
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = User.objects.db_manager("owner").create_user(username, password="x", is_staff=True)
    user.groups.add(Group.objects.using("owner").get_or_create(name=role)[0])
    device = TOTPDevice.objects.using("owner").create(user=user, name="bench", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id  # signed in with the second factor
    session.save()
    return client


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` by the nearest-rank rule; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]
