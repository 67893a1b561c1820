"""Access export and erasure for one subject in every isolation level (real PostgreSQL, app role).

Two subjects in the same tenant (Ada and Bob) and, in the other tenant of the same pool or level,
someone with Ada's very email under another name: the export holds everything of Ada's and nothing
of theirs; the erasure leaves no plain text of Ada's anywhere, keeps the log's chain, shows
"[erased]" on reads and leaves Bob and the other tenant untouched. A legal hold refuses erasure.
"""

from __future__ import annotations

import json
import zipfile

import pytest

from core.actors import SystemActor
from core.errors import Conflict
from core.personal_data import subject_ref
from events.crypto import ERASED, WITHHELD
from jobs.services import jobs_work_inline
from privacy import services
from privacy.models import ErasureProof, RequestKind, RequestStatus, SubjectRequest
from privacy.scan import plaintext_scan
from sagas.models import SagaState
from sagas.services import saga_run_inline
from tenants.context import tenant_context
from tenants.logs import tenant_log_store
from workspace import ledger
from workspace import services as workspace
from workspace.models import Account, Member

pytestmark = pytest.mark.django_db(databases="__all__")
ACTOR = SystemActor("tests")
ISOLATIONS = ("shared", "schema", "dedicated")


def people(tenant) -> dict[str, str]:
    tag = tenant.slug.replace("-", "")
    return {
        "ada_email": f"ada.{tag}@example.test",
        "ada_name": f"Ada Lovelace {tag}",
        "bob_email": f"bob.{tag}@example.test",
        "bob_name": f"Bob Babbage {tag}",
    }


def seed_two_subjects(tenant, other) -> dict[str, str]:
    """Ada and Bob in `tenant`, each with ledger entries; Ada's email in `other` under another name."""
    p = people(tenant)
    with tenant_context(tenant):
        ada = workspace.member_create(name=p["ada_name"], email=p["ada_email"], password="pw-ada-123456")
        bob = workspace.member_create(name=p["bob_name"], email=p["bob_email"], password="pw-bob-123456")
        account = Account.objects.order_by("pk").first()
        assert account is not None
        ledger.ledger_deposit(account_id=account.pk, amount="12.50", actor=ada, note="ada's deposit")
        ledger.ledger_deposit(account_id=account.pk, amount="7.00", actor=bob, note="bob's deposit")
    with tenant_context(other):
        workspace.member_create(name=f"Other Tenant Person {other.slug}", email=p["ada_email"], password="pw-x-123456")
    return p


def export_zip(tenant, email) -> tuple[SubjectRequest, dict[str, bytes]]:
    opened = services.request_open(tenant=tenant, email=email, kind=RequestKind.ACCESS, actor=ACTOR)
    jobs_work_inline(group=("privacy.request", opened.pk), timeout=60)
    opened.refresh_from_db()
    assert opened.status == RequestStatus.READY, opened.error
    with zipfile.ZipFile(opened.bundle_path) as archive:
        return opened, {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture(autouse=True)
def bundles_in_tmp(settings, tmp_path):
    settings.PRIVACY_BUNDLE_DIR = str(tmp_path / "dsar")


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_the_export_holds_everything_of_the_subject_and_nothing_of_anyone_else(tenant_world, isolation):
    tenant, other = tenant_world[isolation]
    p = seed_two_subjects(tenant, other)
    opened, files = export_zip(tenant, p["ada_email"])
    assert set(files) == {
        "subject.json", "members.csv", "events.csv", "ledger_entries.csv", "audit_entries.csv", "manifest.json"
    }  # fmt: skip
    manifest = json.loads(files["manifest.json"])
    import hashlib  # noqa: PLC0415 — only this assertion needs it

    for name, meta in manifest["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == meta["sha256"], name
    data = json.loads(files["subject.json"])
    assert [m["email"] for m in data["members"]] == [p["ada_email"]]
    joined = [e for e in data["events"] if e["event_type"] == "member.joined"]
    assert joined and joined[0]["data"]["member"] == {"name": p["ada_name"], "email": p["ada_email"]}
    assert [e["data"]["note"] for e in data["ledger_entries"]] == ["ada's deposit"]
    assert any(a["action"] == "privacy.request_open" for a in data["audit_entries"])
    everything = b"".join(files.values()).decode()
    for foreign in (p["bob_email"], p["bob_name"], "bob's deposit", f"Other Tenant Person {other.slug}"):
        assert foreign not in everything
    # The ZIP went through the job engine, and its hash is on the request.
    assert opened.job_id and len(opened.bundle_sha256) == 64


def test_another_subjects_envelope_in_the_same_event_is_withheld(tenant_world):
    tenant, other = tenant_world["schema"]
    p = seed_two_subjects(tenant, other)
    from events.crypto import Personal  # noqa: PLC0415 — only this test writes a mixed event

    store = tenant_log_store(tenant)
    ada, bob = subject_ref(tenant.pk, p["ada_email"]), subject_ref(tenant.pk, p["bob_email"])
    store.append("chat", "c1", "chat.message", {"from": Personal(ada, "hi Bob"), "to": Personal(bob, p["bob_name"])})
    _, files = export_zip(tenant, p["ada_email"])
    [message] = [e for e in json.loads(files["subject.json"])["events"] if e["event_type"] == "chat.message"]
    assert message["data"] == {"from": "hi Bob", "to": WITHHELD}


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_erasure_leaves_no_plain_text_keeps_the_chain_and_spares_everyone_else(tenant_world, isolation, viewer):
    tenant, other = tenant_world[isolation]
    p = seed_two_subjects(tenant, other)
    access, _ = export_zip(tenant, p["ada_email"])  # a pending bundle the erasure must delete
    assert plaintext_scan(tenant, [p["ada_email"], p["ada_name"]]).hits  # the oracle sees her first

    opened = services.request_open(tenant=tenant, email=p["ada_email"], kind=RequestKind.ERASURE, actor=ACTOR)
    saga = saga_run_inline(saga_id=opened.saga_id, timeout=120)
    assert saga.state == SagaState.COMPLETED, saga.error
    opened.refresh_from_db()
    assert opened.status == RequestStatus.COMPLETED and opened.email_enc == "" and opened.names_enc == ""

    report = plaintext_scan(tenant, [p["ada_email"], p["ada_name"]])
    assert report.hits == [] and report.tables > 5
    store = tenant_log_store(tenant)
    assert store.verify_chain().ok
    with tenant_context(tenant) as alias:
        ada = Member.objects.using(alias).get(name=ERASED)
        assert not ada.is_active and not ada.check_password("pw-ada-123456")
        bob = Member.objects.using(alias).get(email=p["bob_email"])
    [joined] = store.stream("member", str(ada.pk))
    from events.crypto import decrypt_tree  # noqa: PLC0415 — presentation-time decryption, as the viewer does

    with tenant_context(tenant) as alias:
        assert decrypt_tree(joined.event_data, store, alias=alias)["member"] == ERASED
        [bob_joined] = store.stream("member", str(bob.pk))
        assert decrypt_tree(bob_joined.event_data, store, alias=alias)["member"]["name"] == p["bob_name"]
    assert store.state_at("member", str(ada.pk)).version == 1  # point-in-time state still folds
    # The operator's event viewer shows "[erased]" on the event and the aggregate, never an error.
    from django.test import Client  # noqa: PLC0415 — only this check goes through the screens

    from tests.support.personas import mfa_verify_client  # noqa: PLC0415

    client = Client()
    client.force_login(viewer)
    mfa_verify_client(client, viewer)
    page = client.get(f"/events/{joined.event_id}/", {"log": tenant.slug})
    assert page.status_code == 200 and ERASED in page.content.decode() and p["ada_name"] not in page.content.decode()
    assert client.get(f"/events/aggregate/member/{ada.pk}/", {"log": tenant.slug}).status_code == 200
    # The other tenant's person with the same email is untouched.
    with tenant_context(other) as alias:
        assert Member.objects.using(alias).filter(email=p["ada_email"], is_active=True).exists()
    # The pending access bundle is gone; the proof names nobody.
    access.refresh_from_db()
    assert access.bundle_purged_at and access.email_enc == ""
    proof = ErasureProof.objects.get(request=opened)
    assert proof.keys_destroyed == 1 and proof.verification["ok"]
    text = json.dumps([proof.counts, proof.verification, proof.subject_hash])
    assert p["ada_email"] not in text and p["ada_name"] not in text
    # Asked again, the export finds no member row and only "[erased]" in her events.
    _, files = export_zip(tenant, p["ada_email"])
    data = json.loads(files["subject.json"])
    assert data["members"] == [] and [e["data"]["member"] for e in data["events"]] == [ERASED]
    assert p["ada_name"] not in b"".join(files.values()).decode()


def test_a_legal_hold_refuses_erasure_with_one_sentence(tenant_world):
    tenant, other = tenant_world["shared"]
    p = seed_two_subjects(tenant, other)
    services.hold_place(tenant=tenant, email=p["ada_email"], reason="Litigation 2026-17", actor=ACTOR)
    with pytest.raises(Conflict, match=r"^A legal hold on this person \(“Litigation 2026-17”\) stops erasure"):
        services.request_open(tenant=tenant, email=p["ada_email"], kind=RequestKind.ERASURE, actor=ACTOR)
    # Bob is not under the hold, the tenant is not either.
    opened = services.request_open(tenant=tenant, email=p["bob_email"], kind=RequestKind.ERASURE, actor=ACTOR)
    assert saga_run_inline(saga_id=opened.saga_id).state == SagaState.COMPLETED


def test_erasing_the_owner_of_record_is_refused_with_one_sentence_and_opens_nothing(tenant_world):
    tenant, other = tenant_world["schema"]
    p = seed_two_subjects(tenant, other)
    type(tenant).objects.filter(pk=tenant.pk).update(owner_email=p["ada_email"].upper())
    tenant.refresh_from_db()
    with pytest.raises(Conflict, match=r"is the owner of record of .*offboarding the tenant"):
        services.request_open(tenant=tenant, email=p["ada_email"], kind=RequestKind.ERASURE, actor=ACTOR)
    assert not SubjectRequest.objects.filter(tenant=tenant).exists()
    # Her access request is still hers to make.
    opened = services.request_open(tenant=tenant, email=p["ada_email"], kind=RequestKind.ACCESS, actor=ACTOR)
    assert opened.kind == RequestKind.ACCESS


def test_a_hold_placed_after_the_request_stops_the_saga_before_anything_changes(tenant_world):
    tenant, other = tenant_world["dedicated"]
    p = seed_two_subjects(tenant, other)
    opened = services.request_open(tenant=tenant, email=p["ada_email"], kind=RequestKind.ERASURE, actor=ACTOR)
    services.hold_place(tenant=tenant, reason="Regulator inquiry", actor=ACTOR)  # the whole tenant
    saga = saga_run_inline(saga_id=opened.saga_id)
    assert saga.state == SagaState.COMPENSATED and "legal hold on this tenant" in saga.error
    opened.refresh_from_db()
    assert opened.status == RequestStatus.FAILED and "legal hold" in opened.error
    with tenant_context(tenant) as alias:
        assert Member.objects.using(alias).filter(email=p["ada_email"], name=p["ada_name"]).exists()


def _erasure_with_fault(tenant, email, fault) -> tuple[SubjectRequest, object]:
    """The request as request_open makes it, with the crash tests' fault in the saga's input."""
    import datetime as dt  # noqa: PLC0415 — only the crash tests build the request by hand

    from django.utils import timezone  # noqa: PLC0415

    from privacy.services import ERASURE_SAGA  # noqa: PLC0415
    from sagas.services import saga_start  # noqa: PLC0415
    from tenants import crypto  # noqa: PLC0415

    opened = SubjectRequest.objects.create(
        kind=RequestKind.ERASURE,
        tenant=tenant,
        subject_ref=subject_ref(tenant.pk, email),
        email_enc=crypto.encrypt_json({"email": email}),
        due_at=timezone.now() + dt.timedelta(days=30),
        status=RequestStatus.RUNNING,
    )
    saga = saga_start(
        saga_type=ERASURE_SAGA, input={"request_id": str(opened.pk), "_fault": fault}, tenant_id=tenant.pk
    )
    return opened, saga


@pytest.fixture
def fault_hook(settings):
    from jobs import services as job_services  # noqa: PLC0415 — its hook is cached
    from tests.support import faults  # noqa: PLC0415 — test-only machinery

    settings.JOBS_FAULT_HOOK = "tests.support.faults.inject"
    job_services._fault_hook.cache_clear()
    yield
    faults.STATEMENTS.disarm()
    job_services._fault_hook.cache_clear()


STEPS = ("check_holds", "anonymise_member", "destroy_keys", "purge_derived", "tombstone", "verify", "record_proof")


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_a_crash_after_any_early_statement_of_every_step_converges(tenant_world, fault_hook, isolation, n):
    """Every step's first attempt dies right after its n-th SQL statement (what autocommitted stays,
    an open transaction rolls back); the retries must still end with the person erased."""
    tenant, other = tenant_world[isolation]
    p = seed_two_subjects(tenant, other)
    opened, saga = _erasure_with_fault(
        tenant, p["ada_email"], {"mode": "raise_after_statement", "n_by_step": dict.fromkeys(STEPS, n)}
    )
    saga = saga_run_inline(saga_id=saga.id, timeout=120)
    assert saga.state == SagaState.COMPLETED, saga.error
    assert saga.steps.filter(job__attempts__gte=2).exists()  # the faults did fire
    assert plaintext_scan(tenant, [p["ada_email"], p["ada_name"]]).hits == []
    assert tenant_log_store(tenant).verify_chain().ok
    with tenant_context(tenant) as alias:
        assert Member.objects.using(alias).filter(email=p["bob_email"], name=p["bob_name"]).exists()
    assert ErasureProof.objects.filter(request=opened).count() == 1


def test_a_failure_before_the_point_of_no_return_restores_the_member(tenant_world, fault_hook):
    tenant, other = tenant_world["schema"]
    p = seed_two_subjects(tenant, other)
    opened, saga = _erasure_with_fault(tenant, p["ada_email"], {"step": "destroy_keys", "mode": "raise"})
    saga = saga_run_inline(saga_id=saga.id, timeout=120)
    assert saga.state == SagaState.COMPENSATED
    with tenant_context(tenant) as alias:
        ada = Member.objects.using(alias).get(email=p["ada_email"])
        assert ada.name == p["ada_name"] and ada.is_active and ada.check_password("pw-ada-123456")
    opened.refresh_from_db()
    assert opened.status == RequestStatus.FAILED and "point of no return" not in opened.error


def test_a_failure_after_the_point_of_no_return_is_not_undone_and_says_so(tenant_world, fault_hook):
    tenant, other = tenant_world["shared"]
    p = seed_two_subjects(tenant, other)
    opened, saga = _erasure_with_fault(tenant, p["ada_email"], {"step": "tombstone", "mode": "raise"})
    saga = saga_run_inline(saga_id=saga.id, timeout=120)
    assert saga.state == SagaState.COMPENSATED
    with tenant_context(tenant) as alias:
        assert not Member.objects.using(alias).filter(email=p["ada_email"]).exists()  # still anonymised
    opened.refresh_from_db()
    assert opened.status == RequestStatus.FAILED and "Past the point of no return" in opened.error
    # Forward recovery: open the erasure again; it finishes and the scan is clean.
    again = services.request_open(tenant=tenant, email=p["ada_email"], kind=RequestKind.ERASURE, actor=ACTOR)
    assert saga_run_inline(saga_id=again.saga_id).state == SagaState.COMPLETED
    assert plaintext_scan(tenant, [p["ada_email"], p["ada_name"]]).hits == []
