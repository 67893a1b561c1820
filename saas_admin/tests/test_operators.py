from __future__ import annotations

import re

import pytest
from django.contrib.auth import authenticate, get_user_model

from audit.models import AuditEntry
from core.permissions import Role, operator_role
from saas_admin.models import ApiToken

pytestmark = pytest.mark.django_db
User = get_user_model()


def admin_only_requests(target_id: int) -> list[tuple[str, str, dict]]:
    return [
        ("get", "/operators/", {}),
        ("get", "/operators/new/", {}),
        ("post", "/operators/new/", {"username": "mallory", "role": "admin"}),
        ("post", f"/operators/{target_id}/role/", {"role": "admin"}),
        ("post", f"/operators/{target_id}/deactivate/", {}),
        ("post", f"/operators/{target_id}/activate/", {}),
        ("post", f"/operators/{target_id}/reset-password/", {}),
    ]


def test_anonymous_visitors_are_sent_to_sign_in_from_every_operator_view(client, viewer):
    for method, url, data in admin_only_requests(viewer.pk):
        response = getattr(client, method)(url, data)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url


@pytest.mark.parametrize("persona", ["viewer", "operator", "outsider"])
def test_everyone_but_admins_gets_403_and_nothing_changes(request, client_for, persona, make_operator):
    target = make_operator(Role.VIEWER, "target_user")
    client = client_for(request.getfixturevalue(persona))
    for method, url, data in admin_only_requests(target.pk):
        assert getattr(client, method)(url, data).status_code == 403, url
    target.refresh_from_db()
    assert target.is_active and operator_role(target) == Role.VIEWER
    assert not User.objects.filter(username="mallory").exists()
    assert not AuditEntry.objects.filter(action__startswith="operator.").exists()


def test_admins_see_operators_with_role_and_last_sign_in(client_for, platform_admin, operator, viewer, outsider):
    response = client_for(platform_admin).get("/operators/")
    html = response.content.decode()
    assert response.status_code == 200
    assert operator.username in html and viewer.username in html
    assert outsider.username not in html  # tenant members are not operators
    assert "badge-role-operator" in html and "never" in html


def test_an_admin_creates_an_operator_whose_one_time_password_works(client_for, platform_admin):
    response = client_for(platform_admin).post(
        "/operators/new/",
        {"username": "nina", "email": "nina@example.test", "role": "operator"},
        REMOTE_ADDR="192.0.2.10",
    )
    assert response.status_code == 200
    password = response.context["password"]
    assert password in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    nina = User.objects.get(username="nina")
    assert nina.is_staff and operator_role(nina) == Role.OPERATOR
    assert authenticate(username="nina", password=password) == nina
    entry = AuditEntry.objects.get(action="operator.create")
    assert (entry.actor, entry.target_id, entry.ip_address) == (platform_admin, str(nina.pk), "192.0.2.10")
    assert password not in f"{entry.summary} {entry.details}"


def test_a_duplicate_username_is_one_clear_sentence_and_nothing_is_created(client_for, platform_admin, viewer):
    response = client_for(platform_admin).post(
        "/operators/new/", {"username": viewer.username.upper(), "role": "viewer"}
    )
    assert response.status_code == 400
    assert f"An account named “{viewer.username.upper()}” already exists." in response.content.decode()
    assert User.objects.filter(username__iexact=viewer.username).count() == 1
    assert not AuditEntry.objects.filter(action="operator.create").exists()


@pytest.mark.parametrize(
    "data",
    [
        {"username": "", "role": "viewer"},
        {"username": "bad name!", "role": "viewer"},
        {"username": "ok", "role": "root"},
        {"username": "ok", "email": "not-an-email", "role": "viewer"},
    ],
)
def test_bad_input_creates_nothing(client_for, platform_admin, data):
    before = User.objects.count()
    response = client_for(platform_admin).post("/operators/new/", data)
    assert response.status_code == 400
    assert 'class="errorlist' in response.content.decode()
    assert User.objects.count() == before


def test_an_admin_changes_a_role_and_it_is_audited(client_for, platform_admin, viewer):
    response = client_for(platform_admin).post(f"/operators/{viewer.pk}/role/", {"role": "operator"}, follow=True)
    assert "now has the Operator role" in response.content.decode()
    assert operator_role(User.objects.get(pk=viewer.pk)) == Role.OPERATOR
    entry = AuditEntry.objects.get(action="operator.role_change")
    assert entry.details == {"username": viewer.username, "from": "Viewer", "to": "Operator"}


def test_admins_cannot_demote_or_deactivate_themselves(client_for, platform_admin):
    client = client_for(platform_admin)
    response = client.post(f"/operators/{platform_admin.pk}/role/", {"role": "viewer"}, follow=True)
    assert "You cannot change your own role or access" in response.content.decode()
    client.post(f"/operators/{platform_admin.pk}/deactivate/")
    platform_admin.refresh_from_db()
    assert platform_admin.is_active and operator_role(User.objects.get(pk=platform_admin.pk)) == Role.ADMIN


def test_deactivating_an_operator_revokes_their_tokens_and_is_audited(
    client_for, platform_admin, operator, api_token_for
):
    token = api_token_for(operator)
    response = client_for(platform_admin).post(f"/operators/{operator.pk}/deactivate/", follow=True)
    assert "is deactivated" in response.content.decode()
    operator.refresh_from_db()
    assert not operator.is_active
    assert ApiToken.objects.get(user=operator).revoked_at is not None
    assert client_for(None).get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert AuditEntry.objects.get(action="operator.deactivate").details["tokens_revoked"] == 1
    client_for(platform_admin).post(f"/operators/{operator.pk}/activate/")
    operator.refresh_from_db()
    assert operator.is_active
    assert AuditEntry.objects.filter(action="operator.activate").count() == 1


def test_an_unknown_operator_is_404(client_for, platform_admin, outsider):
    assert client_for(platform_admin).post("/operators/999999/deactivate/").status_code == 404
    # Non-staff users are not operators, so they cannot be managed here either.
    assert client_for(platform_admin).post(f"/operators/{outsider.pk}/role/", {"role": "admin"}).status_code == 404


def test_a_password_reset_shows_a_new_one_time_password_once(client_for, platform_admin, viewer):
    response = client_for(platform_admin).post(f"/operators/{viewer.pk}/reset-password/")
    password = response.context["password"]
    assert re.search(re.escape(password), response.content.decode())
    assert authenticate(username=viewer.username, password=password) is not None
    assert AuditEntry.objects.filter(action="operator.password_reset", target_id=str(viewer.pk)).exists()
