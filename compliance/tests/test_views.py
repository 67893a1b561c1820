"""Compliance screens and API: who may read, who may change, and hostile input (one sentence, never 500)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from compliance import registers
from compliance.models import AccessReview, Control, Incident
from core.actors import SystemActor
from core.permissions import AUDITOR_GROUP, Role
from jobs.models import Job

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

READ_PAGES = [
    "/compliance/",
    "/compliance/frameworks/soc2/",
    "/compliance/frameworks/iso27001/?state=fail",
    "/compliance/controls/mfa-enrolled/",
    "/compliance/soa/",
    "/compliance/access-reviews/",
    "/compliance/incidents/",
    "/compliance/frameworks/gdpr/export.csv",
    "/compliance/frameworks/gdpr/export.json",
    "/compliance/frameworks/gdpr/export.zip",
]
API_READS = [
    "/api/compliance/frameworks",
    "/api/compliance/frameworks/soc2",
    "/api/compliance/controls",
    "/api/compliance/controls/mfa-enrolled",
    "/api/compliance/access-reviews",
    "/api/compliance/incidents",
]


@pytest.fixture
def auditor(make_operator):
    user = make_operator(None, "audrey_auditor")
    registers.auditor_grant(username=user.username, actor=SystemActor("tests"))
    return user


def test_compliance_pages_need_sign_in(client, loaded_library):
    for url in READ_PAGES:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url


def test_outsiders_and_staff_without_a_role_get_403(client_for, outsider, make_operator, loaded_library):
    for user in (outsider, make_operator(None)):
        client = client_for(user)
        for url in READ_PAGES:
            assert client.get(url).status_code == 403, url


def test_viewers_and_auditors_read_every_compliance_page(client_for, viewer, auditor, loaded_library):
    for user in (viewer, auditor):
        client = client_for(user)
        for url in READ_PAGES:
            assert client.get(url).status_code == 200, (user.username, url)


def test_auditors_read_audit_and_events_but_nothing_else(client_for, auditor, loaded_library):
    client = client_for(auditor)
    assert client.get("/audit/").status_code == 200
    assert client.get("/events/").status_code == 200
    for url in ("/tenants/", "/jobs/", "/migrations/", "/operators/", "/sagas/"):
        assert client.get(url).status_code == 403, url
    assert client.get("/").status_code == 302  # the overview sends them to compliance
    assert client.post("/compliance/evaluate/").status_code == 403
    assert (
        client.post("/compliance/incidents/new/", {"title": "x", "detected_at": "2026-01-01T00:00"}).status_code == 403
    )


def test_auditors_must_enrol_a_second_factor(client_for, auditor, loaded_library):
    response = client_for(auditor, mfa=False).get("/compliance/")
    assert response.status_code == 302 and "/account/mfa/" in response["Location"]


def test_viewers_cannot_evaluate_and_operators_can(client_for, viewer, operator, loaded_library):
    assert client_for(viewer).post("/compliance/evaluate/").status_code == 403
    response = client_for(operator).post("/compliance/evaluate/", {"control": "mfa-enrolled"})
    assert response.status_code == 302 and response["Location"].endswith("/compliance/controls/mfa-enrolled/")
    job = Job.objects.get(kind="compliance.evaluate")
    assert job.payload == {"controls": ["mfa-enrolled"]} and job.requested_by == operator


def test_only_admins_change_a_control(client_for, operator, platform_admin, loaded_library):
    data = {"owner": operator.username, "applicable": "yes", "justification": "Ours.", "frequency": "weekly"}
    assert client_for(operator).post("/compliance/controls/mfa-enrolled/edit/", data).status_code == 403
    assert client_for(platform_admin).post("/compliance/controls/mfa-enrolled/edit/", data).status_code == 302
    control = Control.objects.get(key="mfa-enrolled")
    assert (control.owner, control.frequency, control.justification) == (operator, "weekly", "Ours.")


def test_only_admins_run_access_reviews_and_record_sign_in_reviews(
    client_for, operator, platform_admin, loaded_library
):
    assert client_for(operator).post("/compliance/access-reviews/start/").status_code == 403
    assert client_for(operator).post("/compliance/sign-in-review/").status_code == 403
    response = client_for(platform_admin).post("/compliance/access-reviews/start/")
    review = AccessReview.objects.get()
    assert response["Location"].endswith(f"/compliance/access-reviews/{review.pk}/")
    decide = f"/compliance/access-reviews/{review.pk}/decide/"
    assert client_for(operator).post(decide, {"operator": operator.pk, "decision": "confirmed"}).status_code == 403
    client_for(platform_admin).post(decide, {"operator": platform_admin.pk, "decision": "confirmed"})
    assert review.decisions.get(operator=platform_admin).decision == "pending"  # never their own
    assert client_for(operator).post(f"/compliance/access-reviews/{review.pk}/complete/").status_code == 403


def test_operators_record_incidents_viewers_cannot(client_for, viewer, operator, loaded_library):
    data = {"title": "Laptop stolen", "detected_at": "2026-01-02T10:00", "notifiable": "yes"}
    assert client_for(viewer).post("/compliance/incidents/new/", data).status_code == 403
    assert client_for(operator).post("/compliance/incidents/new/", data).status_code == 302
    incident = Incident.objects.get()
    assert (
        client_for(viewer)
        .post(f"/compliance/incidents/{incident.pk}/", {"notified_at": "2026-01-02T12:00"})
        .status_code
        == 403
    )
    client_for(operator).post(f"/compliance/incidents/{incident.pk}/", {"notified_at": "2026-01-02T12:00"})
    incident.refresh_from_db()
    assert incident.notified_at is not None


def test_hostile_input_is_one_sentence_never_a_server_error(client_for, operator, platform_admin, loaded_library):
    admin = client_for(platform_admin)
    for url in (
        "/compliance/controls/nope/",
        "/compliance/results/99999999999999999999/",
        "/compliance/results/0/",
        "/compliance/frameworks/nope/",
        "/compliance/frameworks/soc2/export.exe",
        "/compliance/access-reviews/123456789/",
    ):
        assert admin.get(url).status_code == 404, url
    assert admin.get("/compliance/?at=yesterday").status_code in (400, 422)
    too_long = {"owner": "", "applicable": "no", "justification": "x" * 5000, "frequency": "daily"}
    response = admin.post("/compliance/controls/mfa-enrolled/edit/", too_long, follow=True)
    assert response.status_code == 200 and "at most 2,000 characters" in response.content.decode()
    response = client_for(operator).post(
        "/compliance/incidents/new/", {"title": "x", "detected_at": "3026-01-01T00:00"}, follow=True
    )
    assert "cannot be in the future" in response.content.decode()
    response = client_for(operator).post(
        "/compliance/incidents/new/", {"title": "x", "detected_at": "soon"}, follow=True
    )
    assert response.status_code == 200 and "YYYY-MM-DD" in response.content.decode()


def test_the_result_page_recomputes_the_evidence_hash(client_for, viewer, operator, loaded_library):
    from compliance import services
    from compliance.models import Evaluation
    from jobs.services import job_execute

    job = services.evaluation_start(actor=operator, control_keys=["incident-notification"])
    job_execute(job_id=job.pk, heartbeat=False)
    result = Evaluation.objects.get(job=job).results.get()
    page = client_for(viewer).get(f"/compliance/results/{result.pk}/").content.decode()
    assert result.evidence_sha256 in page and "Matches" in page
    overview = client_for(viewer).get("/compliance/").content.decode()
    assert "Incidents" in overview and "readiness" in overview.lower()


# --- API -----------------------------------------------------------------------------------------------


def test_the_api_needs_credentials(client, loaded_library):
    for url in API_READS:
        assert client.get(url).status_code == 401, url


def test_viewers_read_the_api_and_cannot_change_anything(api_client_for, viewer, loaded_library):
    api = api_client_for(viewer)
    for url in API_READS:
        assert api.get(url).status_code == 200, url
    assert api.post("/api/compliance/evaluations", {}, content_type="application/json").status_code == 403
    assert (
        api.patch(
            "/api/compliance/controls/mfa-enrolled", {"frequency": "weekly"}, content_type="application/json"
        ).status_code
        == 403
    )
    assert api.post("/api/compliance/access-reviews").status_code == 403
    assert (
        api.post(
            "/api/compliance/incidents",
            {"title": "x", "detected_at": "2026-01-01T00:00:00Z"},
            content_type="application/json",
        ).status_code
        == 403
    )


def test_auditors_read_the_api_in_their_session_only(client_for, auditor, loaded_library):
    client = client_for(auditor)
    for url in API_READS:
        assert client.get(url).status_code == 200, url
    assert client.get("/api/audit").status_code == 200
    assert client.get("/api/tenants/").status_code == 403
    assert client.post("/api/compliance/evaluations", {}, content_type="application/json").status_code == 403


def test_operators_start_evaluations_and_admins_patch_controls(
    api_client_for, operator, platform_admin, loaded_library
):
    response = api_client_for(operator).post(
        "/api/compliance/evaluations", {"controls": ["mfa-enrolled"]}, content_type="application/json"
    )
    assert response.status_code == 202 and Job.objects.filter(pk=response.json()["job_id"]).exists()
    assert (
        api_client_for(operator)
        .patch("/api/compliance/controls/mfa-enrolled", {"frequency": "weekly"}, content_type="application/json")
        .status_code
        == 403
    )
    response = api_client_for(platform_admin).patch(
        "/api/compliance/controls/mfa-enrolled",
        {"owner": operator.username, "frequency": "weekly"},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["owner"] == operator.username


def test_api_hostile_input_is_a_4xx_with_one_sentence(api_client_for, platform_admin, loaded_library):
    api = api_client_for(platform_admin)
    cases = [
        ("post", "/api/compliance/evaluations", {"controls": "all"}, 400),
        ("post", "/api/compliance/evaluations", {"controls": ["no-such-control"]}, 422),
        ("post", "/api/compliance/evaluations", [1, 2], 400),
        ("patch", "/api/compliance/controls/mfa-enrolled", {"frequency": "yearly"}, 400),
        ("patch", "/api/compliance/controls/mfa-enrolled", {"owner": "nobody-here"}, 422),
        ("patch", "/api/compliance/controls/mfa-enrolled", {"justification": "x" * 3000}, 400),
        ("post", "/api/compliance/incidents", {"title": "", "detected_at": "2026-01-01T00:00:00Z"}, 400),
        ("post", "/api/compliance/incidents", {"title": "x", "detected_at": "not a time"}, 400),
        (
            "post",
            "/api/compliance/access-reviews/99999999999/decisions",
            {"operator_id": 1, "decision": "confirmed"},
            404,
        ),
        ("post", "/api/compliance/access-reviews/1/decisions", {"operator_id": -5, "decision": "maybe"}, 400),
    ]
    for method, url, body, status in cases:
        response = getattr(api, method)(url, body, content_type="application/json")
        assert response.status_code == status, (url, body, response.content)
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail.endswith(".")
    for url in (
        "/api/compliance/results/99999999999999999999999",
        "/api/compliance/controls/%00",
        "/api/compliance/frameworks/nope",
    ):
        assert api.get(url).status_code in (400, 404), url


def test_incident_times_are_checked_in_the_api(api_client_for, operator, loaded_library):
    api = api_client_for(operator)
    response = api.post(
        "/api/compliance/incidents",
        {"title": "Phishing", "detected_at": (timezone.now() + timezone.timedelta(days=1)).isoformat()},
        content_type="application/json",
    )
    assert response.status_code == 422 and "future" in response.json()["detail"]


def test_the_auditor_group_has_no_operator_role(auditor):
    assert auditor.groups.filter(name=AUDITOR_GROUP).exists()
    assert not auditor.groups.exclude(name=AUDITOR_GROUP).exists()
    assert Group.objects.filter(name=Role.VIEWER.group_name).exists()


def test_incident_times_with_any_offset_or_an_absurd_year_never_reach_the_database(
    api_client_for, operator, loaded_library
):
    api = api_client_for(operator)
    response = api.post(
        "/api/compliance/incidents",
        {"title": "Odd offset", "detected_at": "2026-01-01T00:00:00.326908-17:46"},
        content_type="application/json",
    )
    assert response.status_code == 201 and Incident.objects.get().detected_at.isoformat().startswith("2026-01-01T17:46")
    for value in ("1807-06-21T00:00:00+17:46", "0001-01-01T00:00:00+14:00"):
        response = api.post(
            "/api/compliance/incidents", {"title": "x", "detected_at": value}, content_type="application/json"
        )
        assert response.status_code in (400, 422), value
        assert response.json()["detail"].endswith(".")


def test_an_export_job_builds_a_bundle_readers_download_and_it_verifies(client_for, auditor, outsider, loaded_library):
    from compliance import exports
    from compliance.models import ExportFile
    from jobs.services import job_execute

    client = client_for(auditor)
    response = client.post("/compliance/frameworks/iso27001/export-job/", {"format": "zip", "from": "2026-01-01"})
    assert response.status_code == 302
    job = Job.objects.get(kind="compliance.export")
    assert job_execute(job_id=job.pk, heartbeat=False) == "succeeded"
    download = client.get(f"/compliance/exports/{job.pk}/")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert exports.bundle_verify(download.content) == []
    assert download["X-Content-SHA256"] == ExportFile.objects.get(job=job).sha256 == exports.sha256(download.content)
    assert client_for(outsider).get(f"/compliance/exports/{job.pk}/").status_code == 403
    assert client_for(None).post("/compliance/frameworks/iso27001/export-job/").status_code == 302
    assert client.get("/compliance/exports/999999/").status_code == 404
    bad = client.post("/compliance/frameworks/iso27001/export-job/", {"format": "exe"}, follow=True)
    assert "zip, csv, json or oscal" in bad.content.decode()


def test_api_exports_as_a_job_and_the_tenant_endpoint(
    api_client_for, client, viewer, auditor, client_for, loaded_library
):
    from jobs.services import job_execute
    from tests.factories import TenantFactory

    api = api_client_for(viewer)
    response = api.post(
        "/api/compliance/frameworks/soc2/exports",
        {"format": "oscal", "from": "2026-01-01"},
        content_type="application/json",
    )
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["job_id"])
    assert job.payload["format"] == "oscal" and job.payload["from"].startswith("2026-01-01")
    assert job_execute(job_id=job.pk, heartbeat=False) == "succeeded"
    assert client_for(auditor).get(f"/compliance/exports/{job.pk}/")["Content-Type"] == "application/json"
    bad = api.post("/api/compliance/frameworks/soc2/exports", {"format": "exe"}, content_type="application/json")
    assert bad.status_code == 400
    assert (
        client.post("/api/compliance/frameworks/soc2/exports", {}, content_type="application/json").status_code == 401
    )
    tenant = TenantFactory(plan="team")
    body = api.get(f"/api/compliance/tenants/{tenant.pk}").json()
    assert body["tenant"] == tenant.slug and {c["control"] for c in body["checks"]} >= {
        "tenant-isolation-rls",
        "backups-rpo",
    }
    assert api.get("/api/compliance/tenants/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api.get("/api/compliance/tenants/not-a-uuid").status_code in (400, 404)


def test_only_admins_attest_manual_controls_on_the_screen(client_for, operator, platform_admin, loaded_library):
    data = {"statement": "Risk review held on 2026-11-30.", "valid_days": "365"}
    assert client_for(operator).post("/compliance/controls/risk-assessment/attest/", data).status_code == 403
    response = client_for(platform_admin).post("/compliance/controls/risk-assessment/attest/", data, follow=True)
    assert "Attestation recorded." in response.content.decode()
    assert (
        "Risk review held on 2026-11-30."
        in client_for(operator).get("/compliance/controls/risk-assessment/").content.decode()
    )
    bad = client_for(platform_admin).post(
        "/compliance/controls/risk-assessment/attest/", {"statement": "x", "valid_days": "99999999999999"}, follow=True
    )
    assert "1 to 400 days" in bad.content.decode()


def test_the_tenant_page_lists_its_data_subject_requests_and_no_one_elses(client_for, viewer, loaded_library):
    from datetime import timedelta

    from privacy.models import RequestKind, SubjectRequest
    from tests.factories import TenantFactory

    tenant, other = TenantFactory(), TenantFactory()
    now = timezone.now()
    mine = SubjectRequest.objects.create(
        kind=RequestKind.ACCESS, tenant=tenant, subject_ref="e" * 64, due_at=now - timedelta(days=1)
    )
    theirs = SubjectRequest.objects.create(
        kind=RequestKind.ERASURE, tenant=other, subject_ref="f" * 64, due_at=now + timedelta(days=30)
    )
    client = client_for(viewer)
    page = client.get(f"/compliance/tenants/{tenant.pk}/").content.decode()
    assert f"/privacy/requests/{mine.pk}/" in page and "Overdue" in page
    assert f"/privacy/requests/{theirs.pk}/" not in page
    empty = client.get(f"/compliance/tenants/{other.pk}/").content.decode()
    assert f"/privacy/requests/{theirs.pk}/" in empty and "No data-subject request" not in empty
