"""The Jobs screen and API: who may see and act, live fragments, one-sentence refusals."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from jobs.models import Job
from jobs.tests.test_engine import Echo  # noqa: F401  (registers the test.echo kind)
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def _failed(**extra):
    return JobFactory(kind="test.echo", state=Job.State.FAILED, attempts=3, error="RuntimeError: boom", **extra)


def test_anonymous_visitors_are_sent_to_sign_in(client):
    job = _failed()
    for url in (reverse("jobs:list"), reverse("jobs:detail", args=[job.pk]), reverse("jobs:progress", args=[job.pk])):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"]


def test_outsiders_see_nothing_and_viewers_cannot_act(client_for, outsider, viewer):
    job = _failed()
    assert client_for(outsider).get(reverse("jobs:list")).status_code == 403
    assert client_for(outsider).get(reverse("jobs:detail", args=[job.pk])).status_code == 403
    as_viewer = client_for(viewer)
    page = as_viewer.get(reverse("jobs:detail", args=[job.pk]))
    assert page.status_code == 200 and b"RuntimeError: boom" in page.content and b"Retry now" not in page.content
    for action in ("cancel", "retry"):
        assert as_viewer.post(reverse(f"jobs:{action}", args=[job.pk])).status_code == 403
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and not AuditEntry.objects.filter(action__startswith="job.").exists()


def test_the_list_filters_by_kind_and_state_and_pages_by_keyset(client_for, viewer):
    for _ in range(55):
        JobFactory(kind="test.echo", state=Job.State.SUCCEEDED)
    failed = _failed()
    client = client_for(viewer)
    only_failed = client.get(reverse("jobs:list"), {"state": "failed"}).content.decode()
    assert re.findall(r'href="/jobs/(\d+)/"', only_failed) == [str(failed.pk)]
    first = client.get(reverse("jobs:list"), {"kind": "test.echo"})
    assert first.context["next_before"] is not None and len(first.context["jobs"]) == 50
    second = client.get(reverse("jobs:list"), {"kind": "test.echo", "before": first.context["next_before"]})
    assert len(second.context["jobs"]) == 6 and second.context["next_before"] is None
    fragment = client.get(reverse("jobs:list"), headers={"HX-Request": "true"}).content.decode()
    assert 'id="job-table"' in fragment and "<html" not in fragment


def test_an_unknown_or_malformed_job_is_a_404(client_for, viewer):
    client = client_for(viewer)
    assert client.get("/jobs/999999999/").status_code == 404
    assert client.get("/jobs/99999999999999999999999/").status_code == 404


def test_an_operator_retries_a_failed_job_and_it_is_audited(client_for, operator):
    job = _failed()
    response = client_for(operator).post(reverse("jobs:retry", args=[job.pk]), follow=True)
    assert b"is queued again" in response.content
    job.refresh_from_db()
    assert job.state in (Job.State.PENDING, Job.State.QUEUED) and job.max_attempts == job.attempts + 3
    assert AuditEntry.objects.get(action="job.retry").actor == operator


def test_a_refused_action_is_one_sentence_on_the_page(client_for, operator):
    job = JobFactory(kind="test.echo", state=Job.State.SUCCEEDED, attempts=1)
    response = client_for(operator).post(reverse("jobs:retry", args=[job.pk]), follow=True)
    assert "A succeeded job has nothing left to retry." in response.content.decode()


def test_saga_jobs_are_managed_from_the_saga_monitor_not_here(client_for, operator):
    job = JobFactory(kind="saga.step", state=Job.State.FAILED, attempts=3, payload={"saga_id": "x", "step_id": 1})
    response = client_for(operator).post(reverse("jobs:retry", args=[job.pk]), follow=True)
    assert "managed from their own screen" in response.content.decode()
    job.refresh_from_db()
    assert job.state == Job.State.FAILED


def test_the_progress_fragment_polls_while_open_and_stops_when_finished(client_for, viewer):
    running = JobFactory(kind="test.echo", state=Job.State.RUNNING, progress_done=3, progress_total=12)
    client = client_for(viewer)
    live = client.get(reverse("jobs:progress", args=[running.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in live and "3 / 12" in live and "25%" in live
    Job.objects.filter(pk=running.pk).update(state=Job.State.SUCCEEDED)
    done = client.get(reverse("jobs:progress", args=[running.pk])).content.decode()
    assert "hx-trigger" not in done


def test_the_api_reads_for_viewers_and_acts_for_operators(api_client_for, viewer, operator, client):
    job = _failed()
    assert client.get("/api/jobs/").status_code == 401
    as_viewer = api_client_for(viewer)
    page = as_viewer.get("/api/jobs/?state=failed").json()
    assert [j["id"] for j in page["jobs"]] == [job.pk] and page["jobs"][0]["error"] == "RuntimeError: boom"
    assert as_viewer.post(f"/api/jobs/{job.pk}/retry").status_code == 403
    assert as_viewer.get("/api/jobs/?state=sideways").json() == {
        "detail": "Unknown state; use open or one of: pending, queued, running, succeeded, skipped, failed, cancelled."
    }
    assert as_viewer.get("/api/jobs/?limit=0").status_code == 400
    as_operator = api_client_for(operator)
    retried = as_operator.post(f"/api/jobs/{job.pk}/retry")
    assert retried.status_code == 200 and retried.json()["state"] in ("pending", "queued")
    again = as_operator.post(f"/api/jobs/{job.pk}/retry")
    assert again.status_code == 409
    assert as_viewer.get("/api/jobs/424242424").status_code == 404
