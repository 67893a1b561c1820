"""After a committed erasure, `pg_dump` of the placement and of the control plane holds no plain text
of the person: an oracle independent of the saga's own scan (superuser dump: RLS does not hide rows).

Transactional (the saga's work is committed for real, as in production), one tenant per level.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from django.conf import settings

from core.actors import SystemActor
from privacy import services
from privacy.models import RequestKind
from saas_admin.embedded_pg import client_program
from sagas.models import SagaState
from sagas.services import saga_run_inline
from tenants.context import tenant_context
from tenants.logs import tenant_log_store
from workspace import ledger
from workspace import services as workspace
from workspace.models import Account

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def pg_dump(dbname: str, schema: str | None = None) -> str:
    cfg = settings.DATABASE_BOOTSTRAP
    command = [
        client_program("pg_dump"),
        "--no-owner",
        "--data-only",
        "-d",
        dbname,
        "-U",
        cfg.get("USER") or "postgres",
    ]
    if cfg.get("HOST"):
        command += ["-h", cfg["HOST"]]
    if cfg.get("PORT"):
        command += ["-p", str(cfg["PORT"])]
    if schema:
        command += ["-n", schema]
    env = {**os.environ, "PGPASSWORD": cfg.get("PASSWORD") or ""}
    return subprocess.run(command, check=True, capture_output=True, text=True, env=env, timeout=300).stdout


def dumps(tenant) -> str:
    placement = tenant.placement
    control = settings.DATABASES["owner"]["NAME"]
    if placement.is_dedicated:
        return pg_dump(placement.db_name) + pg_dump(control, "public")
    return pg_dump(control, placement.schema_name) + pg_dump(control, "public")


@pytest.mark.parametrize("isolation", ["shared", "schema", "dedicated"])
def test_pg_dump_finds_nothing_of_the_erased_person_and_everything_of_the_other(make_tenant, isolation, tmp_path):
    settings.PRIVACY_BUNDLE_DIR = str(tmp_path)
    tenant = make_tenant(isolation)
    tag = tenant.slug.replace("-", "")
    gone, kept = (f"Zelda Dumpling {tag}", f"zelda.{tag}@dump.test"), (f"Yuri Keeper {tag}", f"yuri.{tag}@dump.test")
    with tenant_context(tenant):
        zelda = workspace.member_create(name=gone[0], email=gone[1], password="pw-zelda-123456")
        workspace.member_create(name=kept[0], email=kept[1], password="pw-yuri-123456")
        account = Account.objects.order_by("pk").first()
        assert account is not None
        for _ in range(60):  # past a snapshot (every 50 events)
            ledger.ledger_deposit(account_id=account.pk, amount="1.00", actor=zelda, note="by zelda")
    actor = SystemActor("tests")
    services.request_open(tenant=tenant, email=gone[1], kind=RequestKind.ACCESS, actor=actor)
    before = dumps(tenant)
    assert gone[0] in before and gone[1] in before  # the member row holds her in plain text until erasure
    opened = services.request_open(tenant=tenant, email=gone[1], kind=RequestKind.ERASURE, actor=actor)
    assert saga_run_inline(saga_id=opened.saga_id, timeout=120).state == SagaState.COMPLETED
    after = dumps(tenant)
    assert gone[0] not in after and gone[1] not in after
    assert kept[0] in after and kept[1] in after  # the oracle can see plain text where it exists
    assert tenant_log_store(tenant).verify_chain().ok
