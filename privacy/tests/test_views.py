"""Privacy screens, API and commands: wiring, denied access, single-use links, hostile input."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from jobs.services import jobs_work_inline
from privacy import services
from privacy.models import LegalHold, RequestKind, RequestStatus, SubjectRequest
from sagas.models import SagaState
from sagas.services import saga_run_inline
from tenants.context import tenant_context
from tests.support.personas import mfa_verify_client
from workspace import services as workspace
from workspace.models import Member

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture(autouse=True)
def bundles_in_tmp(settings, tmp_path):
    settings.PRIVACY_BUNDLE_DIR = str(tmp_path / "dsar")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    mfa_verify_client(client, user)
    return client


def ready_request(tenant, operator) -> SubjectRequest:
    email = f"owner@{tenant.slug}.test"
    opened = services.request_open(tenant=tenant, email=email, kind=RequestKind.ACCESS, actor=operator)
    jobs_work_inline(group=("privacy.request", opened.pk), timeout=60)
    opened.refresh_from_db()
    assert opened.status == RequestStatus.READY, opened.error
    return opened


READ_PAGES = ("privacy:list", "privacy:holds", "privacy:processing")


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for name in READ_PAGES:
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_non_operators_are_refused_every_page_and_action(tenant_world, outsider, operator):
    opened = ready_request(tenant_world["shared"][0], operator)
    client = signed_in(outsider)
    for name in READ_PAGES:
        assert client.get(reverse(name)).status_code == 403
    assert client.get(reverse("privacy:detail", args=[opened.pk])).status_code == 403
    assert client.get(reverse("privacy:processing_export", args=["csv"])).status_code == 403
    assert (
        client.post(reverse("privacy:open"), {"tenant": "x", "email": "a@b.test", "kind": "access"}).status_code == 403
    )
    assert client.post(reverse("privacy:link_create", args=[opened.pk])).status_code == 403
    assert client.post(reverse("privacy:hold_place"), {"tenant": "x", "reason": "r"}).status_code == 403


def test_a_viewer_reads_everything_but_changes_nothing(tenant_world, viewer, operator):
    tenant = tenant_world["schema"][0]
    opened = ready_request(tenant, operator)
    client = signed_in(viewer)
    for name in READ_PAGES:
        assert client.get(reverse(name)).status_code == 200
    detail = client.get(reverse("privacy:detail", args=[opened.pk]))
    assert detail.status_code == 200 and b"Make a download link" not in detail.content
    assert f"owner@{tenant.slug}.test".encode() not in detail.content  # the email is never shown
    before = SubjectRequest.objects.count()
    posted = client.post(reverse("privacy:open"), {"tenant": tenant.slug, "email": "x@y.test", "kind": "access"})
    assert posted.status_code == 403 and SubjectRequest.objects.count() == before
    assert client.post(reverse("privacy:link_create", args=[opened.pk])).status_code == 403
    assert client.get(reverse("privacy:processing_export", args=["json"])).status_code == 403


def test_an_operator_may_not_erase_or_hold(tenant_world, operator):
    tenant = tenant_world["shared"][0]
    client = signed_in(operator)
    erase = {"tenant": tenant.slug, "email": f"owner@{tenant.slug}.test", "kind": "erasure"}
    assert client.post(reverse("privacy:open"), erase).status_code == 403
    assert not SubjectRequest.objects.filter(kind=RequestKind.ERASURE).exists()
    assert client.post(reverse("privacy:hold_place"), {"tenant": tenant.slug, "reason": "r"}).status_code == 403
    assert not LegalHold.objects.exists()


def test_an_operator_opens_a_request_and_hands_out_a_link_that_works_once(tenant_world, operator):
    tenant = tenant_world["dedicated"][0]
    client = signed_in(operator)
    email = f"owner@{tenant.slug}.test"
    response = client.post(reverse("privacy:open"), {"tenant": tenant.slug, "email": email, "kind": "access"})
    opened = SubjectRequest.objects.get(tenant=tenant)
    assert response.status_code == 302 and response["Location"] == reverse("privacy:detail", args=[opened.pk])
    jobs_work_inline(group=("privacy.request", opened.pk), timeout=60)
    client.post(reverse("privacy:link_create", args=[opened.pk]))
    page = client.get(reverse("privacy:detail", args=[opened.pk])).content.decode()
    url = page.split("<code>")[1].split("</code>")[0]
    assert "/privacy/download/dsar_" in url
    path = url.split("testserver", 1)[1]
    first = Client().get(path)  # the subject needs no account
    assert first.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(first.streaming_content)))
    assert json.loads(archive.read("subject.json"))["members"][0]["email"] == email
    assert Client().get(path).status_code == 404  # single use
    assert Client().get("/privacy/download/dsar_made-up/").status_code == 404
    assert AuditEntry.objects.filter(action="privacy.download", target_id=opened.subject_ref).count() == 1
    assert AuditEntry.objects.filter(action="privacy.link_create").count() == 1
    # The page refreshed again no longer shows the link: it was shown once.
    assert "dsar_" not in client.get(reverse("privacy:detail", args=[opened.pk])).content.decode()


def test_an_expired_link_does_not_work(tenant_world, operator, settings):
    settings.PRIVACY_LINK_TTL_SECONDS = -1
    opened = ready_request(tenant_world["schema"][1], operator)
    token = services.link_create(subject_request=opened, actor=operator)
    assert Client().get(f"/privacy/download/{token}/").status_code == 404


def test_an_admin_erases_from_the_screen_and_a_hold_refuses_with_one_sentence(tenant_world, platform_admin):
    tenant = tenant_world["shared"][1]
    with tenant_context(tenant):
        workspace.member_create(name="Eve Erasable", email="eve@erase.test", password="pw-eve-123456")
    client = signed_in(platform_admin)
    client.post(reverse("privacy:hold_place"), {"tenant": tenant.slug, "email": "eve@erase.test", "reason": "Audit"})
    refused = client.post(
        reverse("privacy:open"), {"tenant": tenant.slug, "email": "eve@erase.test", "kind": "erasure"}, follow=True
    )
    assert "A legal hold on this person (“Audit”) stops erasure until it is released." in refused.content.decode()
    hold = LegalHold.objects.get(tenant=tenant)
    client.post(reverse("privacy:hold_release", args=[hold.pk]))
    client.post(reverse("privacy:open"), {"tenant": tenant.slug, "email": "eve@erase.test", "kind": "erasure"})
    opened = SubjectRequest.objects.get(kind=RequestKind.ERASURE, tenant=tenant)
    assert saga_run_inline(saga_id=opened.saga_id).state == SagaState.COMPLETED
    with tenant_context(tenant) as alias:
        assert not Member.objects.using(alias).filter(email="eve@erase.test").exists()
    actions = set(AuditEntry.objects.filter(action__startswith="privacy.").values_list("action", flat=True))
    assert {"privacy.hold_place", "privacy.request_refused", "privacy.hold_release", "privacy.erasure_start"} <= actions


def test_the_record_of_processing_exports_as_csv_and_json_and_is_audited(operator):
    client = signed_in(operator)
    rows = list(
        csv.DictReader(io.StringIO(client.get(reverse("privacy:processing_export", args=["csv"])).content.decode()))
    )
    assert {"owner": "workspace.Member", "field": "email"}.items() <= next(
        r for r in rows if r["owner"] == "workspace.Member" and r["field"] == "email"
    ).items()
    data = json.loads(client.get(reverse("privacy:processing_export", args=["json"])).content)
    assert any(f["owner"] == "member.joined" and f["kind"] == "event" for f in data["fields"])
    assert client.get("/privacy/processing.xml").status_code == 404
    assert AuditEntry.objects.filter(action="privacy.processing_export").count() == 2


# --- API ------------------------------------------------------------------------------------------


def test_the_api_checks_roles_and_answers_hostile_input_with_one_sentence(
    tenant_world, api_client_for, viewer, operator, platform_admin
):
    tenant = tenant_world["schema"][0]
    as_viewer, as_operator, as_admin = api_client_for(viewer), api_client_for(operator), api_client_for(platform_admin)
    body = {"tenant": tenant.slug, "email": f"owner@{tenant.slug}.test", "kind": "access"}
    assert as_viewer.get("/api/privacy/requests").status_code == 200
    assert as_viewer.post("/api/privacy/requests", body, content_type="application/json").status_code == 403
    erase = {**body, "kind": "erasure"}
    assert as_operator.post("/api/privacy/requests", erase, content_type="application/json").status_code == 403
    created = as_operator.post("/api/privacy/requests", body, content_type="application/json")
    assert created.status_code == 201 and "email" not in created.json()
    assert as_viewer.get(f"/api/privacy/requests/{created.json()['id']}").json()["status"] == "running"
    for bad in (
        {**body, "email": "not an email"},
        {**body, "email": "a" * 300 + "@x.test"},
        {**body, "email": 12},
        {**body, "kind": "gossip"},
        {**body, "tenant": "no-such-tenant"},
    ):
        response = as_operator.post("/api/privacy/requests", bad, content_type="application/json")
        assert response.status_code in (400, 422), (bad, response.content)
        assert response.json()["detail"]
    assert as_viewer.get("/api/privacy/requests/not-a-uuid").status_code == 404
    assert as_admin.post(f"/api/privacy/holds/{2**70}/release").status_code in (404, 422)
    hold = as_admin.post(
        "/api/privacy/holds", {"tenant": tenant.slug, "reason": "Tax audit"}, content_type="application/json"
    )
    assert hold.status_code == 201 and hold.json()["active"]
    assert (
        as_operator.post(
            "/api/privacy/holds", {"tenant": tenant.slug, "reason": "x"}, content_type="application/json"
        ).status_code
        == 403
    )
    refused = as_admin.post("/api/privacy/requests", erase, content_type="application/json")
    assert refused.status_code == 409 and refused.json()["detail"].startswith("A legal hold on this tenant")
    assert len(as_viewer.get("/api/privacy/processing").json()) > 10


# --- commands -------------------------------------------------------------------------------------


def test_the_commands_export_and_erase(tenant_world, tmp_path):
    tenant = tenant_world["dedicated"][1]
    with tenant_context(tenant):
        workspace.member_create(name="Carl Command", email="carl@cmd.test", password="pw-carl-123456")
    out = tmp_path / "carl.zip"
    stdout = io.StringIO()
    call_command("dsar_export", tenant.slug, "carl@cmd.test", "--out", str(out), stdout=stdout, stderr=io.StringIO())
    assert "sha256=" in stdout.getvalue()
    assert json.loads(zipfile.ZipFile(out).read("subject.json"))["members"][0]["name"] == "Carl Command"
    stdout = io.StringIO()
    call_command("dsar_erase", tenant.slug, "carl@cmd.test", stdout=stdout)
    assert stdout.getvalue().startswith("erased; proof sha256=")
    with pytest.raises(CommandError, match="No tenant with that slug."):
        call_command("dsar_erase", "no-such-tenant", "carl@cmd.test")
    with pytest.raises(CommandError, match="not a valid email"):
        call_command("dsar_export", tenant.slug, "nope", "--out", str(out))


# --- retention ------------------------------------------------------------------------------------


def test_retention_is_admin_only_to_change_and_purges_old_bundles_but_not_held_ones(
    tenant_world, platform_admin, operator, viewer, api_client_for
):
    import datetime as dt  # noqa: PLC0415 — only this test moves time

    from django.utils import timezone  # noqa: PLC0415

    from privacy.models import RetentionPolicy, RetentionRun  # noqa: PLC0415
    from privacy.retention import retention_schedule  # noqa: PLC0415

    assert signed_in(viewer).get(reverse("privacy:retention")).status_code == 200
    assert Client().get(reverse("privacy:retention")).status_code == 302
    assert (
        signed_in(operator).post(reverse("privacy:retention_set", args=["dsar_bundles"]), {"days": "1"}).status_code
        == 403
    )
    admin = signed_in(platform_admin)
    bad = admin.post(
        reverse("privacy:retention_set", args=["dsar_bundles"]), {"days": "-5", "enabled": "on"}, follow=True
    )
    assert "Days must be between 1 and 36500." in bad.content.decode()
    admin.post(reverse("privacy:retention_set", args=["dsar_bundles"]), {"days": "1", "enabled": "on"})
    assert RetentionPolicy.objects.get(category="dsar_bundles").days == 1
    assert (
        api_client_for(operator)
        .put("/api/privacy/retention/sessions", {"days": 3}, content_type="application/json")
        .status_code
        == 403
    )

    held_tenant, free_tenant = tenant_world["shared"]
    old, kept = ready_request(free_tenant, operator), ready_request(held_tenant, operator)
    services.hold_place(tenant=held_tenant, reason="Dispute", actor=platform_admin)
    SubjectRequest.objects.filter(pk__in=[old.pk, kept.pk]).update(completed_at=timezone.now() - dt.timedelta(days=3))
    jobs = retention_schedule()
    assert retention_schedule() == []  # once a day
    for job in jobs:
        jobs_work_inline(group=(job.group_type, job.group_id), timeout=60)
    old.refresh_from_db()
    kept.refresh_from_db()
    assert old.bundle_purged_at and not os.path.exists(old.bundle_path)
    assert kept.bundle_purged_at is None and os.path.exists(kept.bundle_path)
    run = RetentionRun.objects.get(category="dsar_bundles")
    assert (run.purged, run.held) == (1, 1)
    assert RetentionRun.objects.get(category="control_events").note.startswith("Not purged")


# --- the workspace admin's side ---------------------------------------------------------------------


def test_a_workspace_admin_files_a_request_that_the_control_plane_picks_up(tenant_world):
    from privacy.intake import intake_sweep  # noqa: PLC0415 — the beat task's function
    from tests.support.tenancy import MEMBER_PASSWORD  # noqa: PLC0415
    from workspace.models import PrivacyIntake  # noqa: PLC0415

    tenant = tenant_world["schema"][1]
    host = f"{tenant.slug}.localhost"
    admin = Client(HTTP_HOST=host)
    assert admin.post("/login/", {"email": f"owner@{tenant.slug}.test", "password": MEMBER_PASSWORD}).status_code == 302
    member = Client(HTTP_HOST=host)
    assert member.post("/login/", {"email": f"m0@{tenant.slug}.test", "password": MEMBER_PASSWORD}).status_code == 302
    assert member.get("/privacy/").status_code == 403  # workspace admins only
    assert member.post("/privacy/", {"email": f"m1@{tenant.slug}.test"}).status_code == 403
    assert Client(HTTP_HOST=host).get("/privacy/").status_code == 302  # anonymous: sign in
    bad = admin.post("/privacy/", {"email": "not an email"}, follow=True)
    assert "Please give the person&#x27;s email address." in bad.content.decode()
    admin.post("/privacy/", {"email": f"m1@{tenant.slug}.test"})
    assert intake_sweep()["picked_up"] == 1
    opened = SubjectRequest.objects.get(tenant=tenant, source__startswith="ws:")
    with tenant_context(tenant) as alias:
        intake = PrivacyIntake.objects.using(alias).get()
        assert intake.email == "" and intake.request_id == opened.pk  # the email left the placement
    assert intake_sweep()["picked_up"] == 0  # idempotent
    jobs_work_inline(group=("privacy.request", opened.pk), timeout=60)
    intake_sweep()
    with tenant_context(tenant) as alias:
        intake = PrivacyIntake.objects.using(alias).get()
    assert intake.status == "ready" and "/privacy/download/dsar_" in intake.download_url
    page = admin.get("/privacy/").content.decode()
    assert "Download (works once)" in page
    path = intake.download_url.split("localhost", 1)[1].split("/", 1)[1]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(Client().get("/" + path).streaming_content)))
    assert json.loads(archive.read("subject.json"))["members"][0]["email"] == f"m1@{tenant.slug}.test"


def test_the_screens_answer_hostile_input_with_one_sentence_never_a_server_error(tenant_world, platform_admin):
    tenant = tenant_world["shared"][0]
    client = signed_in(platform_admin)
    assert client.get(reverse("privacy:detail", args=["not-a-uuid"])).status_code == 404
    assert client.get(reverse("privacy:detail", args=["00000000-0000-0000-0000-000000000000"])).status_code == 404
    assert client.post(reverse("privacy:hold_release", args=[2**62])).status_code in (302, 404)
    for data, sentence in (
        ({"tenant": tenant.slug, "email": "a" * 300 + "@x.test", "kind": "access"}, "not a valid email address"),
        ({"tenant": "nope", "email": "a@b.test", "kind": "access"}, "No tenant with that slug."),
        ({"tenant": tenant.slug, "email": "a@b.test", "kind": "gossip"}, "must be access or erasure"),
    ):
        page = client.post(reverse("privacy:open"), data, follow=True)
        assert page.status_code == 200 and sentence in page.content.decode()
    nul = client.post(reverse("privacy:open"), {"tenant": tenant.slug, "email": "a\x00@b.test", "kind": "access"})
    assert nul.status_code in (302, 400)  # the middleware's 400, or the service's sentence
    held = client.post(
        reverse("privacy:hold_place"), {"tenant": tenant.slug, "reason": "x", "until": "not a date"}, follow=True
    )
    assert "Please give the end date as 2026-12-31, or leave it empty." in held.content.decode()
    assert (
        client.get(reverse("privacy:list"), {"page": "999999999999", "status": "\u202e", "kind": "x" * 500}).status_code
        == 200
    )
    assert not SubjectRequest.objects.exists() and not LegalHold.objects.exists()


def test_the_overview_tile_counts_open_and_overdue_requests(tenant_world, viewer, operator):
    import datetime as dt  # noqa: PLC0415 — only this test moves the clock

    from django.utils import timezone  # noqa: PLC0415

    tenant = tenant_world["schema"][0]
    late = services.request_open(
        tenant=tenant, email=f"owner@{tenant.slug}.test", kind=RequestKind.ACCESS, actor=operator
    )
    SubjectRequest.objects.filter(pk=late.pk).update(due_at=timezone.now() - dt.timedelta(days=1))
    page = signed_in(viewer).get("/").content.decode()
    assert "Data-subject requests" in page and "1 request passed the 30-day deadline." in page
    listed = signed_in(viewer).get(reverse("privacy:list"), {"status": "overdue"}).content.decode()
    assert str(late.pk)[:8] in listed and "overdue" in listed


def test_with_four_eyes_an_erasure_waits_for_a_second_admin_who_alone_may_decide(
    tenant_world, platform_admin, make_operator, operator, settings
):
    from core.permissions import Role

    settings.PRIVACY_ERASURE_REQUIRE_APPROVAL = True
    tenant = tenant_world["schema"][1]
    with tenant_context(tenant):
        workspace.member_create(name="Fay Foureyes", email="fay@erase.test", password="pw-fay-123456")
    opener = signed_in(platform_admin)
    opener.post(reverse("privacy:open"), {"tenant": tenant.slug, "email": "fay@erase.test", "kind": "erasure"})
    opened = SubjectRequest.objects.get(kind=RequestKind.ERASURE, tenant=tenant)
    assert opened.status == RequestStatus.AWAITING and opened.saga_id is None  # nothing runs yet
    with tenant_context(tenant) as alias:
        assert Member.objects.using(alias).filter(email="fay@erase.test").exists()

    page = opener.post(reverse("privacy:approve", args=[opened.pk]), follow=True).content.decode()
    assert "A second Admin must decide this erasure; whoever opened it cannot." in page
    assert signed_in(operator).post(reverse("privacy:approve", args=[opened.pk])).status_code == 403
    opened.refresh_from_db()
    assert opened.status == RequestStatus.AWAITING and opened.saga_id is None

    second = signed_in(make_operator(Role.ADMIN))
    second.post(reverse("privacy:approve", args=[opened.pk]))
    opened.refresh_from_db()
    assert opened.status == RequestStatus.RUNNING and opened.saga_id is not None
    assert saga_run_inline(saga_id=opened.saga_id).state == SagaState.COMPLETED
    with tenant_context(tenant) as alias:
        assert not Member.objects.using(alias).filter(email="fay@erase.test").exists()
    page = second.post(reverse("privacy:approve", args=[opened.pk]), follow=True).content.decode()
    assert "This erasure is not awaiting approval." in page  # approving twice starts nothing
    actions = set(AuditEntry.objects.filter(action__startswith="privacy.").values_list("action", flat=True))
    assert {"privacy.erasure_propose", "privacy.erasure_approve"} <= actions


def test_a_second_admin_rejects_an_erasure_over_the_api_and_nothing_is_erased(
    tenant_world, platform_admin, make_operator, api_token_for, settings
):
    from core.permissions import Role

    settings.PRIVACY_ERASURE_REQUIRE_APPROVAL = True
    tenant = tenant_world["shared"][0]
    email = f"owner@{tenant.slug}.test"
    opened = services.request_open(tenant=tenant, email=email, kind=RequestKind.ERASURE, actor=platform_admin)
    assert opened.status == RequestStatus.AWAITING
    mine = Client(HTTP_AUTHORIZATION=f"Bearer {api_token_for(platform_admin)}")
    refused = mine.post(f"/api/privacy/requests/{opened.pk}/reject")
    assert refused.status_code == 403 and refused.json()["detail"].endswith(".")
    second = Client(HTTP_AUTHORIZATION=f"Bearer {api_token_for(make_operator(Role.ADMIN))}")
    rejected = second.post(f"/api/privacy/requests/{opened.pk}/reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "refused"
    assert second.post(f"/api/privacy/requests/{opened.pk}/approve").status_code == 409
    with tenant_context(tenant) as alias:
        assert Member.objects.using(alias).filter(email=email).exists()
