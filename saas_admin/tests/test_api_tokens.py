from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry
from saas_admin.models import ApiToken
from tests.support.personas import mfa_verify_client

pytestmark = pytest.mark.django_db


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# --- The token page ---------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in_from_token_views(client):
    for method, url in (
        ("get", "/account/tokens/"),
        ("post", "/account/tokens/new/"),
        ("post", "/account/tokens/1/revoke/"),
    ):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_non_operators_get_403_on_token_views(client_for, outsider, make_operator):
    for user in (outsider, make_operator(None)):
        client = client_for(user)
        assert client.get("/account/tokens/").status_code == 403
        assert client.post("/account/tokens/new/", {"name": "x", "expires": "30"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_a_token_is_shown_once_and_only_its_hash_is_stored(client_for, viewer):
    client = client_for(viewer)
    response = client.post("/account/tokens/new/", {"name": "ci", "expires": "30"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    plaintext = response.context["created"].plaintext
    assert plaintext in response.content.decode()
    token = ApiToken.objects.get(user=viewer)
    assert token.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in f"{token.prefix} {token.name} {token.token_hash}"
    assert plaintext.startswith(token.prefix)
    assert 29 <= (token.expires_at - timezone.now()).days <= 30
    assert plaintext not in client.get("/account/tokens/").content.decode()
    entry = AuditEntry.objects.get(action="token.create")
    assert entry.actor == viewer and plaintext not in f"{entry.summary} {entry.details}"


def test_a_token_without_a_name_is_refused(client_for, viewer):
    response = client_for(viewer).post("/account/tokens/new/", {"name": "  ", "expires": "30"})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_operators_revoke_their_own_tokens_but_not_other_peoples(client_for, viewer, operator, api_token_for):
    api_token_for(viewer)
    theirs = ApiToken.objects.get(user=viewer)
    assert client_for(operator).post(f"/account/tokens/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    client_for(viewer).post(f"/account/tokens/{theirs.pk}/revoke/")
    theirs.refresh_from_db()
    assert theirs.revoked_at is not None
    assert AuditEntry.objects.filter(action="token.revoke", actor=viewer).count() == 1


def test_admins_see_and_revoke_anyones_token(client_for, platform_admin, operator, api_token_for):
    api_token_for(operator, name="deploy bot")
    token = ApiToken.objects.get(user=operator)
    page = client_for(platform_admin).get("/account/tokens/").content.decode()
    assert "deploy bot" in page and operator.username in page
    client_for(platform_admin).post(f"/account/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None


# --- The API ------------------------------------------------------------------------


def test_the_api_refuses_requests_without_credentials(client):
    assert client.get("/api/me").status_code == 401
    assert client.post("/api/tokens", {"name": "x"}, content_type="application/json").status_code == 401


def test_a_token_identifies_its_operator(operator, api_token_for):
    response = Client().get("/api/me", headers=bearer(api_token_for(operator)))
    assert response.status_code == 200
    assert response.json() == {
        "username": operator.username,
        "email": operator.email,
        "role": "Operator",
        "auth": "token",
    }
    assert ApiToken.objects.get(user=operator).last_used_at is not None


def test_unknown_revoked_and_expired_tokens_get_401(operator, api_token_for):
    assert Client().get("/api/me", headers=bearer("cpt_not-a-real-token")).status_code == 401
    revoked = api_token_for(operator, name="revoked")
    ApiToken.objects.filter(name="revoked").update(revoked_at=timezone.now())
    assert Client().get("/api/me", headers=bearer(revoked)).status_code == 401
    expired = api_token_for(operator, name="expired")
    ApiToken.objects.filter(name="expired").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get("/api/me", headers=bearer(expired)).status_code == 401


def test_a_token_stops_working_when_its_owner_loses_the_operator_role(operator, api_token_for):
    token = api_token_for(operator)
    operator.groups.clear()
    assert Client().get("/api/me", headers=bearer(token)).status_code == 401


def test_a_viewer_token_is_refused_on_operator_endpoints(viewer, api_token_for):
    response = Client().post(
        "/api/tokens", {"name": "more"}, content_type="application/json", headers=bearer(api_token_for(viewer))
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "This needs the Operator role."}
    assert ApiToken.objects.filter(user=viewer).count() == 1


def test_an_operator_token_creates_a_token_once(operator, api_token_for):
    response = Client().post(
        "/api/tokens",
        {"name": "rotation", "expires_in_days": 7},
        content_type="application/json",
        headers=bearer(api_token_for(operator)),
    )
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("cpt_") and body["name"] == "rotation" and body["state"] == "active"
    assert Client().get("/api/me", headers=bearer(body["token"])).status_code == 200
    listed = Client().get("/api/tokens", headers=bearer(body["token"])).json()
    assert {t["name"] for t in listed} == {"test token", "rotation"}
    assert all("token" not in t for t in listed)


def test_the_api_rejects_an_out_of_range_expiry_in_one_sentence(operator, api_token_for):
    response = Client().post(
        "/api/tokens",
        {"name": "x", "expires_in_days": 9999},
        content_type="application/json",
        headers=bearer(api_token_for(operator)),
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "expires_in_days: Input should be less than or equal to 365."


def test_revoking_over_the_api_cuts_the_token_off(operator, api_token_for):
    token = api_token_for(operator)
    token_id = ApiToken.objects.get(user=operator).pk
    assert Client().delete(f"/api/tokens/{token_id}", headers=bearer(token)).status_code == 204
    assert Client().get("/api/me", headers=bearer(token)).status_code == 401


def test_operator_sessions_work_but_unsafe_methods_need_csrf(operator, outsider):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    mfa_verify_client(client, operator)
    assert client.get("/api/me").json()["auth"] == "session"
    assert client.post("/api/tokens", {"name": "x"}, content_type="application/json").status_code == 403
    assert not ApiToken.objects.exists()
    outsider_client = Client()
    outsider_client.force_login(outsider)
    mfa_verify_client(outsider_client, outsider)
    assert outsider_client.get("/api/me").status_code == 401


def test_the_openapi_document_lists_both_security_schemes(client):
    document = client.get("/api/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["OperatorTokenAuth"] == {"type": "http", "scheme": "bearer"}
    assert schemes["OperatorSessionAuth"]["in"] == "cookie"
    assert {"OperatorTokenAuth": []} in document["paths"]["/api/me"]["get"]["security"]


def test_a_read_token_cannot_write_and_the_refusal_is_audited(operator, api_token_for):
    from audit.models import AuditEntry

    headers = bearer(api_token_for(operator, scope="read"))
    assert Client().get("/api/tenants/", headers=headers).status_code == 200
    response = Client().post("/api/tokens", {"name": "x"}, content_type="application/json", headers=headers)
    assert response.status_code == 403 and "scope" in response.json()["detail"]
    entry = AuditEntry.objects.get(action="token.refused")
    assert entry.details["reason"] == "scope" and entry.details["needed"] == "Operator"


def test_a_token_scope_never_exceeds_the_operators_role(viewer, operator, api_token_for):
    from core.errors import Forbidden
    from saas_admin.services import token_create

    with pytest.raises(Forbidden):
        token_create(actor=viewer, name="x", expires_in_days=None, scope="write")
    with pytest.raises(Forbidden):
        token_create(actor=operator, name="x", expires_in_days=None, scope="admin")
    response = Client().post(
        "/api/tokens",
        {"name": "x", "scope": "admin"},
        content_type="application/json",
        headers=bearer(api_token_for(operator)),
    )
    assert response.status_code == 403


def test_an_expired_token_is_refused_with_401_and_audited(operator, api_token_for):
    from django.utils import timezone

    from audit.models import AuditEntry

    plaintext = api_token_for(operator)
    ApiToken.objects.update(expires_at=timezone.now())
    assert Client().get("/api/me", headers=bearer(plaintext)).status_code == 401
    assert AuditEntry.objects.get(action="token.refused").details["reason"] == "expired"


def test_a_demoted_operators_admin_token_acts_only_with_the_new_role(platform_admin, api_token_for):
    from core.permissions import Role
    from saas_admin.services import _set_role

    headers = bearer(api_token_for(platform_admin))
    _set_role(platform_admin, Role.VIEWER)
    response = Client().post("/api/tokens", {"name": "x"}, content_type="application/json", headers=headers)
    assert response.status_code == 403
