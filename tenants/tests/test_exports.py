"""Tenant exports and restores: the file, the job (crash and retry), restores across isolation levels,
refused files, in-place restores with their restore point, the schedule and offboarding's final export.

Jobs run in this process through the job engine (what a worker does). One module because every test
here shares the same helpers (a tenant with a ledger, what a user would notice of it, the export and
restore drivers) and the fixtures that remove the tenants restores create.
"""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.utils import timezone

from core.actors import SystemActor
from core.errors import Conflict, InvalidInput
from jobs.models import Job
from jobs.services import job_claim, job_execute, job_sweep, jobs_work_inline
from tenants.context import tenant_context
from tenants.exports import format
from tenants.exports.jobs import export_path, file_sha256
from tenants.exports.services import (
    tenant_export,
    tenant_export_schedule,
    tenant_restore_in_place,
    tenant_restore_new,
)
from tenants.logs import tenant_log_store
from tenants.models import Tenant, TenantExport
from tenants.moves import copy
from tenants.offboarding.services import tenant_delete
from tests.support.tenancy import unique_slug
from workspace import ledger
from workspace.models import Account, Member

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])
ACTOR = SystemActor("tests")


@pytest.fixture(autouse=True)
def _ready(tenancy_templates, allow_tenant_aliases, settings, tmp_path):
    settings.TENANCY_EXPORTS_DIR = str(tmp_path / "exports")


def with_ledger(tenant: Tenant, deposits: int = 4) -> Tenant:
    with tenant_context(tenant) as alias:
        accounts = list(Account.objects.using(alias).order_by("pk"))
    for i in range(deposits):
        with tenant_context(tenant):
            ledger.ledger_deposit(account_id=accounts[i % len(accounts)].pk, amount=f"{i + 1}.50", note=f"d{i}")
    with tenant_context(tenant):
        ledger.ledger_transfer(from_id=accounts[0].pk, to_id=accounts[1].pk, amount="2.00")
    return tenant


def data_of(tenant: Tenant) -> dict[str, Any]:
    """What a workspace user would notice: members, accounts, balances from the log, every event's
    content in order (its hash covers the tenant id, so a copy under another tenant has its own)."""
    tenant = Tenant.objects.select_related("placement").get(pk=tenant.pk)
    with tenant_context(tenant) as alias:
        members = sorted(Member.objects.using(alias).values_list("pk", "email", "password", "is_admin"))
        accounts = sorted(Account.objects.using(alias).values_list("pk", "name", "balance"))
        balances = {pk: str(ledger.ledger_balance_at(account_id=pk, at=timezone.now())) for pk, _, _ in accounts}
    with tenant_log_store(tenant).session() as alias, connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT event_uuid, aggregate_type, aggregate_id, version, event_type, event_data::text, occurred_at "
            "FROM tenantlog_event ORDER BY event_id"
        )
        events = cursor.fetchall()
    return {"members": members, "accounts": accounts, "balances": balances, "events": events}


def chain_breaks(tenant: Tenant) -> int:
    tenant = Tenant.objects.select_related("placement").get(pk=tenant.pk)
    conn = copy.connect(tenant.placement, tenant.pk)
    try:
        return copy.chain_breaks(conn, tenant.pk)
    finally:
        conn.close()


def export_now(tenant: Tenant, **kw: Any) -> TenantExport:
    export = tenant_export(tenant=tenant, actor=ACTOR, **kw)
    jobs_work_inline(group=("tenant_export", export.pk), timeout=120)
    export.refresh_from_db()
    assert export.state == TenantExport.State.DONE, export.error
    return export


def restored(path: Path, isolation: str, created: list) -> Tenant:
    tenant = tenant_restore_new(path=path, slug=unique_slug("rst"), isolation=isolation, worker_grace_seconds=0)
    created.append(tenant)
    return Tenant.objects.select_related("placement").get(pk=tenant.pk)


@pytest.fixture
def restored_tenants():
    """Tenants the restores made, removed after the test like make_tenant's."""
    created: list[Tenant] = []
    yield created
    from tests.support.tenancy import _location, _teardown

    _teardown([_location(Tenant.objects.select_related("placement").get(pk=t.pk)) for t in created])


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "target"), [("shared", "schema"), ("schema", "dedicated"), ("dedicated", "shared")])
def test_an_export_restores_into_another_level_with_every_row_and_a_verified_chain(
    make_tenant, restored_tenants, source, target, monkeypatch
):
    monkeypatch.setattr(format, "_FIRST_EVENTS", 3)  # events load in two statements around an ANALYZE
    tenant = with_ledger(make_tenant(source))
    before = data_of(tenant)
    assert before["events"], "the ledger wrote events"
    export = export_now(tenant)
    assert export.rows == sum(export.tables.values()) and export.size > 0
    assert export.tables["tenantlog_event"] == len(before["events"])
    assert export.sha256 == file_sha256(export_path(export))

    copy_of = restored(export_path(export), target, restored_tenants)

    assert copy_of.isolation == target and copy_of.status == Tenant.Status.ACTIVE
    assert data_of(copy_of) == before
    assert chain_breaks(copy_of) == 0
    assert data_of(tenant) == before, "the source is untouched"
    with tenant_context(copy_of):  # new rows of the copy draw ids nobody in its placement has
        member = Member.objects.create(name="after", email=f"after@{copy_of.slug}.test")
    assert member.pk > max(pk for pk, *_ in before["members"])


def test_a_copy_restored_into_the_shared_level_beside_its_original_gets_a_pool_where_no_id_is_taken(
    make_tenant, restored_tenants
):
    tenant = with_ledger(make_tenant("shared"))
    before = data_of(tenant)
    copy_of = restored(export_path(export_now(tenant)), "shared", restored_tenants)
    assert copy_of.placement.kind == "pool" and copy_of.placement_id != tenant.placement_id
    assert data_of(copy_of) == before and chain_breaks(copy_of) == 0
    assert data_of(tenant) == before


def test_the_file_names_its_format_migrations_and_hashes_and_no_tenant_id(make_tenant):
    tenant = make_tenant("schema")
    export = export_now(tenant)
    with zipfile.ZipFile(export_path(export)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        members = zf.read("tables/workspace_member.tsv").decode()
    assert manifest["format"] == "tenant-export" and manifest["version"] == 1
    assert manifest["tenant"]["slug"] == tenant.slug and manifest["source"]["isolation"] == "schema"
    assert any(m.startswith("workspace.") for m in manifest["migrations"])
    entry = next(t for t in manifest["tables"] if t["name"] == "workspace_member")
    assert entry["rows"] == 3 and len(entry["sha256"]) == 64 and "tenant_id" not in entry["columns"]
    assert str(tenant.pk) not in members and f"owner@{tenant.slug}.test" in members


# --- refused files ---------------------------------------------------------------------------------


def _rewrite(source: Path, target: Path, change: Any) -> None:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, change(info.filename, src.read(info.filename)))


def _no_new_tenant(before: int) -> None:
    assert Tenant.objects.count() == before, "nothing was created"


@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        (lambda n, b: b.replace(b"owner@", b"owner+evil@") if n.endswith("member.tsv") else b, "SHA-256"),
        (lambda n, b: b.replace(b'"version": 1', b'"version": 99') if n == "manifest.json" else b, "version 99"),
        (lambda n, b: b.replace(b'"rows": 3', b'"rows": 4') if n == "manifest.json" else b, "signature"),
        (lambda n, b: b"" if n == "manifest.sig" else b, "signature"),
    ],
    ids=["edited-rows", "unknown-version", "edited-manifest", "no-signature"],
)
def test_a_tampered_or_unknown_file_is_refused_with_one_sentence_and_nothing_created(
    make_tenant, tmp_path, change, sentence
):
    export = export_now(make_tenant("schema"))
    bad = tmp_path / "bad.zip"
    _rewrite(export_path(export), bad, change)
    before = Tenant.objects.count()
    with pytest.raises(format.ExportInvalid, match=sentence) as caught:
        tenant_restore_new(path=bad, slug=unique_slug("bad"), isolation="schema", worker_grace_seconds=0)
    assert str(caught.value).count(". ") == 0 and str(caught.value).endswith(".")
    _no_new_tenant(before)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04garbage"])
def test_a_file_that_is_no_export_is_refused(tmp_path, content):
    bad = tmp_path / "x.zip"
    bad.write_bytes(content)
    before = Tenant.objects.count()
    with pytest.raises(format.ExportInvalid, match="not a tenant export"):
        tenant_restore_new(path=bad, slug=unique_slug("bad"), isolation="schema", worker_grace_seconds=0)
    _no_new_tenant(before)


def test_a_restore_under_a_taken_or_bad_slug_or_level_is_refused_before_provisioning(make_tenant):
    tenant = make_tenant("schema")
    path = export_path(export_now(tenant))
    before = Tenant.objects.count()
    with pytest.raises(InvalidInput, match="already exists"):
        tenant_restore_new(path=path, worker_grace_seconds=0)  # the export's own slug: taken
    with pytest.raises(InvalidInput, match="isolation level must be one of"):
        tenant_restore_new(path=path, slug=unique_slug("x"), isolation="cloud", worker_grace_seconds=0)
    with pytest.raises(InvalidInput):
        tenant_restore_new(path=path, slug="Bad Slug\x00", isolation="schema", worker_grace_seconds=0)
    _no_new_tenant(before)


# --- the job: crash and retry ------------------------------------------------------------------------


def test_an_export_whose_worker_died_mid_file_is_rewritten_whole_by_the_retry(make_tenant):
    tenant = with_ledger(make_tenant("shared"))
    export = tenant_export(tenant=tenant, actor=ACTOR)
    claimed = job_claim(job_id=export.job_id)
    assert isinstance(claimed, tuple)  # attempt 1 holds it ... and its worker dies half-way through the file:
    path = export_path(export)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_name(path.name + ".part").write_bytes(b"PK\x03\x04half a file")
    Job.objects.filter(pk=export.job_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    job_sweep()
    jobs_work_inline(group=("tenant_export", export.pk), timeout=120)
    export.refresh_from_db()
    job = Job.objects.get(pk=export.job_id)
    assert job.attempts == 2 and export.state == TenantExport.State.DONE
    assert not path.with_name(path.name + ".part").exists()
    opened = format.open_export(path)  # every table's hash and count verify
    assert opened.manifest["rows"] == export.rows


def test_an_export_that_fails_after_its_first_table_is_retried_into_a_clean_file(make_tenant, monkeypatch):
    tenant = with_ledger(make_tenant("schema"))
    real, calls = format.copy.count_rows, {"n": 0}

    def count_then_fail(conn, table, tenant_id):
        calls["n"] += 1
        if calls["n"] == 2:  # the second table's count of the first attempt: the first is written
            raise RuntimeError("connection lost")
        return real(conn, table, tenant_id)

    monkeypatch.setattr(format.copy, "count_rows", count_then_fail)
    export = tenant_export(tenant=tenant, actor=ACTOR)
    jobs_work_inline(group=("tenant_export", export.pk), timeout=120)
    export.refresh_from_db()
    assert Job.objects.get(pk=export.job_id).attempts == 2
    assert export.state == TenantExport.State.DONE
    assert format.open_export(export_path(export)).manifest["rows"] == export.rows


def test_an_operator_cancelling_a_running_export_stops_it_at_the_next_table_and_leaves_no_file(
    make_tenant, monkeypatch
):
    tenant = make_tenant("schema")
    export = tenant_export(tenant=tenant, actor=ACTOR)
    real = format.copy.count_rows

    def count_and_cancel(conn, table, tenant_id):  # an operator presses Cancel while the export runs
        Job.objects.filter(pk=export.job_id).update(cancel_requested=True)
        return real(conn, table, tenant_id)

    monkeypatch.setattr(format.copy, "count_rows", count_and_cancel)
    jobs_work_inline(group=("tenant_export", export.pk), timeout=120)
    export.refresh_from_db()
    assert Job.objects.get(pk=export.job_id).state == Job.State.CANCELLED
    assert export.state == TenantExport.State.FAILED and "Cancelled" in export.error
    path = export_path(export)
    assert not path.exists() and not path.with_name(path.name + ".part").exists()


# --- in place ----------------------------------------------------------------------------------------


def test_an_in_place_restore_takes_a_restore_point_first_then_puts_the_old_rows_back(make_tenant):
    tenant = with_ledger(make_tenant("shared"))
    old = data_of(tenant)
    export = export_now(tenant)
    with tenant_context(tenant):
        Member.objects.create(name="later", email=f"later@{tenant.slug}.test")
        ledger.ledger_deposit(
            account_id=Account.objects.order_by("pk").first().pk, amount="9.99", note="after the export"
        )
    changed = data_of(tenant)
    with pytest.raises(InvalidInput, match="Type the tenant's slug"):
        tenant_restore_in_place(tenant=tenant, export=export, confirm=tenant.slug.upper(), actor=ACTOR)
    job = tenant_restore_in_place(tenant=tenant, export=export, confirm=tenant.slug, actor=ACTOR)
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.MOVING  # writes frozen from the request on
    jobs_work_inline(group=(job.group_type, job.group_id), timeout=120)
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    after = data_of(tenant)
    assert after == old and chain_breaks(tenant) == 0
    point = TenantExport.objects.get(tenant=tenant, reason=TenantExport.Reason.RESTORE_POINT)
    assert point.state == TenantExport.State.DONE and point.created_at < job.finished_at
    assert point.tables["workspace_member"] == len(changed["members"])  # the state before the restore is kept


def test_an_in_place_restore_is_refused_for_another_tenants_export_or_while_not_active(make_tenant):
    a, b = make_tenant("schema"), make_tenant("schema")
    export_a = export_now(a)
    with pytest.raises(Exception, match="No such export"):
        tenant_restore_in_place(tenant=b, export=export_a, confirm=b.slug, actor=ACTOR)
    with pytest.raises(InvalidInput, match=f"made of {a.slug}"):
        tenant_restore_in_place(tenant=b, path=export_path(export_a), confirm=b.slug, actor=ACTOR)
    Tenant.objects.filter(pk=a.pk).update(status=Tenant.Status.SUSPENDED)
    with pytest.raises(Conflict, match="only an active tenant"):
        tenant_restore_in_place(tenant=a, export=export_a, confirm=a.slug, actor=ACTOR)
    assert not TenantExport.objects.filter(reason=TenantExport.Reason.RESTORE_POINT).exists()


def keys_of(tenant: Tenant) -> dict[str, bool]:
    """Subject id → does its key still exist, in the tenant's placement."""
    tenant = Tenant.objects.select_related("placement").get(pk=tenant.pk)
    conn = copy.connect(tenant.placement, tenant.pk)
    try:
        rows = conn.execute("SELECT subject_id, key IS NOT NULL FROM tenantlog_subjectkey WHERE tenant_id = %s",
                            [str(tenant.pk)]).fetchall()  # fmt: skip
    finally:
        conn.close()
    return dict(rows)


def erase_key(tenant: Tenant, subject_id: str) -> None:
    conn = copy.connect(tenant.placement, tenant.pk)
    conn.execute("UPDATE tenantlog_subjectkey SET key = NULL, erased_at = now() WHERE tenant_id = %s AND subject_id = %s",
                 [str(tenant.pk), subject_id])  # fmt: skip
    conn.commit()
    conn.close()


def test_a_restore_erases_again_the_keys_erased_after_the_export(make_tenant, restored_tenants):
    tenant = make_tenant("schema")
    keys = keys_of(tenant)
    assert len(keys) >= 2 and all(keys.values()), "seeded members have keys"
    export = export_now(tenant)
    gone = sorted(keys)[0]
    erase_key(tenant, gone)  # an erasure after the export was made

    copy_of = restored(export_path(export), "dedicated", restored_tenants)
    assert keys_of(copy_of) == {**keys, gone: False}

    job = tenant_restore_in_place(tenant=tenant, export=export, confirm=tenant.slug, actor=ACTOR)
    jobs_work_inline(group=(job.group_type, job.group_id), timeout=120)
    assert keys_of(tenant) == {**keys, gone: False}, "in place too"

    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.DELETED)
    last = restored(export_path(export), "schema", restored_tenants)
    assert not any(keys_of(last).values()), "a deleted tenant's keys were destroyed: none comes back"


# --- commands ----------------------------------------------------------------------------------------


def test_the_commands_export_to_a_file_and_restore_it_under_a_new_slug(make_tenant, restored_tenants, tmp_path, capsys):
    tenant = with_ledger(make_tenant("schema"))
    out = tmp_path / "acme.zip"
    call_command("export_tenant", tenant.slug, "--out", str(out))
    assert format.open_export(out).tenant["slug"] == tenant.slug
    slug = unique_slug("cmd")
    call_command("restore_tenant", str(out), "--as", slug, "--isolation", "dedicated")
    copy_of = Tenant.objects.get(slug=slug)
    restored_tenants.append(copy_of)
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(copy_of.pk)
    assert data_of(copy_of) == data_of(tenant)
    before = data_of(tenant)
    with tenant_context(tenant):
        Member.objects.create(name="later", email=f"later@{tenant.slug}.test")
    call_command("restore_tenant", str(out), "--in-place", "--confirm", tenant.slug)
    assert data_of(tenant) == before
    with pytest.raises(CommandError, match="Type the tenant's slug"):
        call_command("restore_tenant", str(out), "--in-place", "--confirm", "wrong")


# --- schedule and offboarding -------------------------------------------------------------------------


def test_the_schedule_exports_tenants_past_half_their_plans_rpo_once(make_tenant, settings):
    settings.COMPLIANCE_RPO_HOURS = {"free": 24, "enterprise": 4}
    tenant = make_tenant("schema", seed=False)
    first = [e for e in tenant_export_schedule() if e.tenant_id == tenant.pk]
    assert len(first) == 1 and first[0].reason == TenantExport.Reason.SCHEDULED
    assert not [e for e in tenant_export_schedule() if e.tenant_id == tenant.pk], "one open export is enough"
    jobs_work_inline(group=("tenant_export", first[0].pk), timeout=120)
    later = timezone.now() + timedelta(hours=13)
    assert [e.tenant_id for e in tenant_export_schedule(now=later) if e.tenant_id == tenant.pk] == [tenant.pk]


def test_retention_removes_old_export_files_but_each_tenants_newest_final_and_held_ones(make_tenant):
    from tenants.exports.services import tenant_exports_expire

    a, b = make_tenant("schema", seed=False), make_tenant("schema", seed=False)
    now = timezone.now()

    def done(tenant: Tenant, days: int, reason: str = "scheduled") -> TenantExport:
        export = TenantExport.objects.create(
            tenant=tenant, reason=reason, state="done", finished_at=now - timedelta(days=days)
        )
        export_path(export).parent.mkdir(parents=True, exist_ok=True)
        export_path(export).write_bytes(b"zip")
        return export

    old_a, newest_a, final_a = done(a, 40), done(a, 35), done(a, 50, "offboarding")
    old_b, newest_b = done(b, 60), done(b, 1)
    result = tenant_exports_expire(before=now - timedelta(days=30), held_tenants={str(b.pk)})
    assert result == {"purged": 1, "held": 1}
    assert not export_path(old_a).exists() and TenantExport.objects.get(pk=old_a.pk).state == "purged"
    for kept in (newest_a, final_a, old_b, newest_b):
        assert export_path(kept).exists() and TenantExport.objects.get(pk=kept.pk).state == "done"
    assert tenant_exports_expire(before=now - timedelta(days=30), held_tenants=set()) == {"purged": 1, "held": 0}
    assert not export_path(old_b).exists()


def test_offboarding_takes_a_final_export_the_owner_downloads_during_the_grace_period(make_tenant, client):
    tenant = make_tenant("shared", owner_email="owner-of@example.test")
    deletion = tenant_delete(tenant=tenant, confirm=tenant.slug, actor=ACTOR, grace_seconds=3600)
    final = TenantExport.objects.get(tenant=tenant, reason=TenantExport.Reason.OFFBOARDING)
    start = Job.objects.get(group_type="tenant_deletion", group_id=str(deletion.pk), batch=1)
    assert start.run_after == deletion.grace_until, "the deletion starts after the grace period"
    job_execute(job_id=final.job_id, heartbeat=False)  # the group's first batch: what a worker does now
    final.refresh_from_db()
    assert final.state == TenantExport.State.DONE
    (message,) = [m for m in mail.outbox if "owner-of@example.test" in m.to and m.subject.startswith("Final export")]
    link = next(line for line in message.body.splitlines() if "/tenants/exports/owner/" in line).strip()
    path = "/" + link.split("/", 3)[3]
    response = client.get(path)
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    assert format.open_export(export_path(final)).tenant["id"] == str(tenant.pk)
    assert client.get(path.replace("exp_", "exp_x")).status_code == 404
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.DELETED)
    assert client.get(path).status_code == 404, "only while the tenant is being deleted"
