"""The Celery task bench/bench_soak.py's worker processes run (`celery worker --include bench.soak_tasks`).

One unit of tenant work as a job handler would do it: ORM read, raw SQL read, every tenth a write in
its own transaction; every row seen is checked to belong to the tenant. The outcome is appended as
one JSON line to `out` (the soak has no result backend; an append of one short line is atomic).
"""

from __future__ import annotations

import json

from celery import shared_task
from django.db import connections, transaction


@shared_task(name="bench.soak_unit")
def soak_unit(tenant_id: str, i: int, out: str) -> None:
    from tenants.context import tenant_context  # bench-only module: Django is set up when the task runs
    from tenants.models import Tenant
    from workspace.models import Member

    cross = errors = 0
    try:
        tenant = Tenant.objects.select_related("placement").get(pk=tenant_id)
        with tenant_context(tenant) as alias:
            emails = list(Member.objects.using(alias).values_list("email", flat=True))
            cross += sum(not e.endswith(f"@{tenant.slug}.test") for e in emails)
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT tenant_id FROM workspace_member")
                cross += sum(str(row[0]) != str(tenant.pk) for row in cursor.fetchall())
            if i % 10 == 0:
                with transaction.atomic(using=alias):
                    member = Member.objects.using(alias).filter(email=f"owner@{tenant.slug}.test").first()
                    if member is None:
                        errors += 1
                    else:
                        member.name = f"Owner of {tenant.slug} #{i}"
                        member.save(using=alias, update_fields=["name"])
    except Exception as exc:  # noqa: BLE001 - counted and reported, the soak goes on
        errors += 1
        print(f"worker error: {type(exc).__name__}: {str(exc)[:200]}")
    with open(out, "a") as f:
        f.write(json.dumps({"cross": cross, "errors": errors}) + "\n")
