"""Workspace pages: sign-in, the owner's set-password link, admin-only actions, denied access."""

from __future__ import annotations

import pytest
from django.test import Client

from tenants.context import tenant_context
from tenants.services import owner_set_password_url
from tests.support.tenancy import MEMBER_PASSWORD
from workspace.models import Account, Member

pytestmark = pytest.mark.django_db(databases="__all__")


def host(tenant) -> str:
    return f"{tenant.slug}.localhost"


def sign_in(tenant, email: str) -> Client:
    client = Client(HTTP_HOST=host(tenant))
    assert client.post("/login/", {"email": email, "password": MEMBER_PASSWORD}).status_code == 302
    return client


@pytest.mark.parametrize("path", ["/", "/members/", "/accounts/", "/members/1/", "/accounts/1/"])
def test_workspace_pages_send_anonymous_visitors_to_sign_in(tenant_world, path):
    response = Client(HTTP_HOST=host(tenant_world["shared"][0])).get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_wrong_password_gets_one_clear_sentence(tenant_world):
    tenant = tenant_world["schema"][0]
    response = Client(HTTP_HOST=host(tenant)).post("/login/", {"email": f"owner@{tenant.slug}.test", "password": "x"})
    assert response.status_code == 401
    assert "That email and password do not match a member of this workspace." in response.content.decode()


def test_the_owner_sets_a_password_with_the_one_time_link_and_is_signed_in(tenant_world):
    tenant = tenant_world["dedicated"][1]
    with tenant_context(tenant):
        Member.objects.create(name="New Owner", email="new.owner@example.test", is_admin=True, password="!")
    path = owner_set_password_url(tenant=tenant, email="new.owner@example.test").split(":8000", 1)[1]
    client = Client(HTTP_HOST=host(tenant))
    response = client.post(path, {"password": "a-fresh-password-9", "confirm": "a-fresh-password-9"})
    assert response.status_code == 302 and response["Location"] == "/members/"
    assert client.get("/members/").status_code == 200
    assert Client(HTTP_HOST=host(tenant)).get(path).status_code == 404  # used: the hash changed
    other = tenant_world["dedicated"][0]
    assert Client(HTTP_HOST=host(other)).get(path).status_code == 404  # another tenant's host


def test_admins_add_members_and_plain_members_may_not(tenant_world):
    tenant = tenant_world["shared"][1]
    admin = sign_in(tenant, f"owner@{tenant.slug}.test")
    admin.post("/members/new/", {"name": "Added", "email": "added@example.test"})
    plain = sign_in(tenant, f"m0@{tenant.slug}.test")
    assert plain.post("/members/new/", {"name": "Sneaky", "email": "sneaky@example.test"}).status_code == 403
    with tenant_context(tenant):
        assert Member.objects.filter(email="added@example.test").exists()
        assert not Member.objects.filter(email="sneaky@example.test").exists()


def test_members_open_accounts_and_bad_input_gets_a_sentence(tenant_world):
    tenant = tenant_world["schema"][1]
    client = sign_in(tenant, f"m1@{tenant.slug}.test")
    client.post("/accounts/new/", {"name": "Travel", "currency": "usd"})
    response = client.post("/accounts/new/", {"name": "Bad", "currency": "12"}, follow=True)
    assert "three-letter" in response.content.decode()
    with tenant_context(tenant):
        assert Account.objects.get(name="Travel").currency == "USD"
        assert not Account.objects.filter(name="Bad").exists()


def test_sign_out_needs_post_and_ends_the_session(tenant_world):
    tenant = tenant_world["shared"][0]
    client = sign_in(tenant, f"owner@{tenant.slug}.test")
    assert client.get("/logout/").status_code == 405
    client.post("/logout/")
    assert client.get("/members/").status_code == 302


def test_an_account_page_leads_to_its_ledger_history(tenant_world):
    tenant = tenant_world["shared"][1]
    client = sign_in(tenant, f"m0@{tenant.slug}.test")
    with tenant_context(tenant):
        account = Account.objects.order_by("pk").first()
    page = client.get(f"/accounts/{account.pk}/").content.decode()
    assert f'href="/accounts/{account.pk}/ledger/"' in page
    assert client.get(f"/accounts/{account.pk}/ledger/").status_code == 200
