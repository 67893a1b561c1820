"""Self-signup: the form, bad input, the live slug check, rate limiting, email verification,
idempotency (double submits, refreshes and repeated links never make two tenants), the progress
page and the one-time signed-in hand-over. The provisioning itself runs through a real worker in
test_provisioning_worker.py; here the saga's messages are not sent."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from sagas import services as saga_services
from sagas.models import Saga, SagaState
from tenants import signup_services
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

GOOD = {
    "name": "Acme Rockets",
    "slug": "acme-rockets",
    "email": "Ada@Acme.example",
    "password": "correct horse battery",
    "plan": "business",
}


@pytest.fixture(autouse=True)
def _quiet(monkeypatch, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SIGNUP_RATE_LIMIT = "3/h"
    cache.clear()
    monkeypatch.setattr(saga_services.transaction, "on_commit", lambda fn, robust=False: None)


def _post(client, **changes):
    return client.post(
        reverse("signup:form"), {**GOOD, "request_key": "4f1c0a4e-9d7b-4c5e-8a51-2f4f5d1c0b11", **changes}
    )


def _link():
    return re.search(r"http://testserver(/signup/verify/\S+/)", mail.outbox[-1].body).group(1)


def test_a_valid_signup_sends_one_verification_email_and_creates_nothing_yet(client):
    response = _post(client)
    assert response.status_code == 302 and response["Location"] == reverse("signup:sent")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["Ada@Acme.example"]
    assert "correct horse" not in mail.outbox[0].body
    assert not Tenant.objects.exists() and not Saga.objects.exists()


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"slug": "admin"}, "The slug “admin” is reserved; please choose another."),
        ({"slug": "Bad_Slug"}, "The slug may only contain lowercase letters"),
        ({"slug": "ab"}, "The slug must be 3 to 40 characters long."),
        ({"email": "not-an-email"}, "Enter a valid email address."),
        ({"password": "short"}, "This password is too short."),
        ({"name": "   "}, "This field is required."),
        ({"plan": "platinum"}, "Select a valid choice."),
    ],
)
def test_bad_input_gets_one_clear_sentence_and_nothing_is_sent(client, changes, sentence):
    response = _post(client, **changes)
    assert response.status_code == 400
    assert sentence in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert mail.outbox == []


def test_a_taken_slug_is_refused(client):
    Tenant.objects.create(slug="acme-rockets", name="Other", isolation="shared")
    response = _post(client)
    assert "The address “acme-rockets” is already taken; please choose another." in response.content.decode()


def test_the_live_slug_check_says_available_taken_or_why_not(client):
    Tenant.objects.create(slug="taken-one", name="Other", isolation="shared")

    def check(slug):
        return client.get(reverse("signup:check_slug"), {"slug": slug}, HTTP_HX_REQUEST="true").content.decode()

    assert "free-one.localhost is available." in check("free-one")
    assert "already taken" in check("taken-one")
    assert "is reserved" in check("www")
    assert 'id="slug-status"' in check("x") and "<form" not in check("x")


def test_signups_are_rate_limited_per_ip(client):
    for i in range(3):
        assert _post(client, slug=f"rate-{i}").status_code == 302
    response = _post(client, slug="rate-4")
    assert response.status_code == 429
    assert "Too many signups from your network" in response.content.decode()
    assert len(mail.outbox) == 3
    other = client.post(reverse("signup:form"), {**GOOD, "slug": "rate-5"}, REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 302


def test_following_the_link_starts_one_saga_however_often_it_is_followed(client):
    _post(client)
    _post(client)  # the same form submitted twice (same request key): a second email, the same signup
    first = client.get(_link())
    again = client.get(_link())
    assert first.status_code == 302 and first["Location"].startswith("/signup/progress/")
    assert again["Location"] == first["Location"]
    saga = Saga.objects.get()
    assert saga.saga_type == "provision.schema"  # plan business → schema
    assert saga.input["owner_email"] == "ada@acme.example"
    assert "owner_password_hash_enc" in saga.input and "correct horse" not in str(saga.input)


def test_a_tampered_or_expired_link_says_so_in_one_sentence(client, settings):
    response = client.get(reverse("signup:verify", args=["not-a-real-token"]))
    assert response.status_code == 400
    assert "This confirmation link is not valid; please sign up again." in response.content.decode()
    _post(client)
    settings.SIGNUP_TOKEN_MAX_AGE_SECONDS = -1
    response = client.get(_link())
    assert "This confirmation link has expired; please sign up again." in response.content.decode()
    assert not Saga.objects.exists()


def test_the_progress_page_polls_while_running_and_hands_over_when_done(client):
    _post(client)
    progress_url = client.get(_link())["Location"]
    page = client.get(progress_url)
    assert page.status_code == 200 and b'hx-trigger="every 1s"' in page.content
    Saga.objects.update(state=SagaState.COMPLETED)
    done = client.get(progress_url, HTTP_HX_REQUEST="true")
    assert done.status_code == 204
    assert done["HX-Redirect"].startswith("http://acme-rockets.localhost:8000/welcome/")


def test_a_failed_provisioning_shows_why_and_offers_to_start_again(client):
    _post(client)
    progress_url = client.get(_link())["Location"]
    Saga.objects.update(state=SagaState.COMPENSATED, error="Step “create_schema” failed: The schema is taken.")
    page = client.get(progress_url).content.decode()
    assert "nothing was left half-made" in page and "The schema is taken." in page
    assert "every 1s" not in page


def test_a_forged_progress_link_is_a_404(client):
    assert client.get(reverse("signup:progress", args=["forged"])).status_code == 404


def test_the_welcome_link_works_once_and_only_for_its_own_tenant(client):
    _post(client)
    client.get(_link())
    saga = Saga.objects.get()
    Saga.objects.update(state=SagaState.COMPLETED)
    tenant = Tenant(pk=saga.tenant_id, slug="acme-rockets")
    other = Tenant(pk="00000000-0000-0000-0000-000000000001", slug="other")
    token = signup_services.welcome_url(saga).rstrip("/").rsplit("/", 1)[-1]
    assert signup_services.welcome_consume(token=token, tenant=other) is None
    assert signup_services.welcome_consume(token=token, tenant=tenant) == "ada@acme.example"
    assert signup_services.welcome_consume(token=token, tenant=tenant) is None
