"""Custom domains: operators add, verify and remove them; only verified ones serve the workspace."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEntry
from core.errors import Conflict, InvalidInput
from tenants import services
from tenants.models import Domain

pytestmark = pytest.mark.django_db(databases="__all__")

CUSTOM = "shop.example.com"


@pytest.fixture
def tenant(tenant_world):
    return tenant_world["shared"][0]


@pytest.fixture
def custom_host_allowed(settings):
    """Django's ALLOWED_HOSTS must let the custom host through before the tenancy middleware sees it."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, CUSTOM]


def test_an_operator_adds_verifies_and_removes_a_custom_domain_and_each_step_is_audited(tenant, operator):
    domain = services.domain_add(tenant=tenant, domain="  HTTPS://Shop.Example.COM:8443/path ", actor=operator)
    assert domain.domain == CUSTOM and not domain.verified and not domain.is_primary
    assert len(domain.verification_token) == 32 and domain.verification_record == f"_saas-verify.{CUSTOM}"
    assert services.domain_verify(domain=domain, actor=operator).verified
    domain.refresh_from_db()
    assert domain.verified and domain.verified_at is not None
    with pytest.raises(Conflict, match="already verified"):  # nothing to do, and no second audit row
        services.domain_verify(domain=domain, actor=operator)
    services.domain_remove(domain=domain, actor=operator)
    assert not Domain.objects.filter(domain=CUSTOM).exists()
    actions = list(AuditEntry.objects.filter(target_id=str(tenant.pk)).values_list("action", flat=True))
    assert sorted(actions) == ["domain.add", "domain.remove", "domain.verify"]


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        ("", "Enter a domain name"),
        ("localhost-shop", "is not a valid domain name"),
        ("-shop.example.com", "is not a valid domain name"),
        ("shop-.example.com", "is not a valid domain name"),
        ("shop_1.example.com", "is not a valid domain name"),
        ("shop..example.com", "is not a valid domain name"),
        ("<script>.example.com", "is not a valid domain name"),
        ("a" * 64 + ".example.com", "is not a valid domain name"),
        (("a" * 60 + ".") * 4 + "example.com", "at most 253 characters"),
        ("other.localhost", "cannot be added by hand"),
        ("Admin.LOCALHOST.", "cannot be added by hand"),
    ],
)
def test_bad_domains_get_one_sentence_and_create_nothing(tenant, operator, value, sentence):
    before = Domain.objects.count()
    with pytest.raises(InvalidInput) as exc:
        services.domain_add(tenant=tenant, domain=value, actor=operator)
    assert "\n" not in str(exc.value) and sentence in str(exc.value)
    assert str(exc.value).endswith(".")
    assert Domain.objects.count() == before
    assert not AuditEntry.objects.filter(action="domain.add").exists()


def test_an_operator_dashboard_host_cannot_become_a_tenant_domain(tenant, operator, settings):
    settings.TENANCY_OPERATOR_HOSTS = ["ops.example.com"]
    with pytest.raises(InvalidInput, match="serves the operator dashboard"):
        services.domain_add(tenant=tenant, domain="OPS.example.com", actor=operator)
    assert not Domain.objects.filter(domain="ops.example.com").exists()


def test_a_domain_can_belong_to_one_tenant_only(tenant_world, operator):
    first, second = tenant_world["shared"]
    services.domain_add(tenant=first, domain=CUSTOM, actor=operator)
    with pytest.raises(InvalidInput, match="already a domain of this tenant"):
        services.domain_add(tenant=first, domain=CUSTOM.upper(), actor=operator)
    with pytest.raises(InvalidInput, match="already belongs to another tenant"):
        services.domain_add(tenant=second, domain=CUSTOM, actor=operator)
    assert Domain.objects.filter(domain=CUSTOM).count() == 1


def test_the_primary_domain_cannot_be_removed(tenant, operator):
    primary = tenant.domains.get(is_primary=True)
    with pytest.raises(Conflict, match="primary domain and cannot be removed"):
        services.domain_remove(domain=primary, actor=operator)
    assert Domain.objects.filter(pk=primary.pk).exists()
    assert not AuditEntry.objects.filter(action="domain.remove").exists()


def test_only_a_verified_custom_domain_serves_the_tenants_workspace(tenant, operator, custom_host_allowed):
    domain = services.domain_add(tenant=tenant, domain=CUSTOM, actor=operator)
    unverified = Client(HTTP_HOST=CUSTOM).get("/login/")
    assert unverified.status_code == 404 and "There is no workspace here" in unverified.content.decode()
    services.domain_verify(domain=domain, actor=operator)
    verified = Client(HTTP_HOST=CUSTOM).get("/login/")
    assert verified.status_code == 200 and verified.wsgi_request.tenant.pk == tenant.pk
    services.domain_remove(domain=domain, actor=operator)
    assert Client(HTTP_HOST=CUSTOM).get("/login/").status_code == 404


def test_a_custom_domain_missing_from_allowed_hosts_is_refused_by_django(tenant, operator, settings):
    settings.ALLOWED_HOSTS = ["testserver", ".localhost"]
    domain = services.domain_add(tenant=tenant, domain=CUSTOM, actor=operator)
    services.domain_verify(domain=domain, actor=operator)
    assert Client(HTTP_HOST=CUSTOM).get("/login/").status_code == 400


def test_operators_manage_domains_on_the_tenant_page(tenant, client_for, operator):
    client = client_for(operator)
    response = client.post(f"/tenants/{tenant.pk}/domains/", {"domain": CUSTOM}, follow=True)
    body = response.content.decode()
    domain = Domain.objects.get(domain=CUSTOM)
    assert f"{CUSTOM} was added" in body
    assert f"_saas-verify.{CUSTOM} TXT {domain.verification_token}" in body
    response = client.post(f"/tenants/{tenant.pk}/domains/{domain.pk}/verify/", follow=True)
    assert f"{CUSTOM} is verified" in response.content.decode()
    domain.refresh_from_db()
    assert domain.verified
    response = client.post(f"/tenants/{tenant.pk}/domains/{domain.pk}/remove/", follow=True)
    assert f"{CUSTOM} was removed" in response.content.decode()
    assert not Domain.objects.filter(domain=CUSTOM).exists()


def test_bad_input_on_the_page_is_one_sentence_and_the_primary_stays(tenant, client_for, operator):
    client = client_for(operator)
    before = Domain.objects.count()
    body = client.post(f"/tenants/{tenant.pk}/domains/", {"domain": "not a domain"}, follow=True).content.decode()
    assert "is not a valid domain name" in body and "Traceback" not in body
    primary = tenant.domains.get(is_primary=True)
    body = client.post(f"/tenants/{tenant.pk}/domains/{primary.pk}/remove/", follow=True).content.decode()
    assert "primary domain and cannot be removed" in body
    assert Domain.objects.count() == before


def test_viewers_see_domains_without_the_buttons(tenant, client_for, viewer, operator):
    services.domain_add(tenant=tenant, domain=CUSTOM, actor=operator)
    body = client_for(viewer).get(f"/tenants/{tenant.pk}/").content.decode()
    assert CUSTOM in body and "Unverified" in body
    assert "Add domain" not in body and ">Verify<" not in body and ">Remove<" not in body


def test_a_domain_of_another_tenant_cannot_be_changed_through_this_tenants_url(tenant_world, client_for, operator):
    first, second = tenant_world["shared"]
    domain = services.domain_add(tenant=second, domain=CUSTOM, actor=operator)
    assert client_for(operator).post(f"/tenants/{first.pk}/domains/{domain.pk}/verify/").status_code == 404
    assert client_for(operator).post(f"/tenants/{first.pk}/domains/{domain.pk}/remove/").status_code == 404
    domain.refresh_from_db()
    assert not domain.verified


def test_domain_changes_are_denied_to_anonymous_viewers_and_outsiders(tenant, client_for, viewer, outsider, operator):
    domain = services.domain_add(tenant=tenant, domain=CUSTOM, actor=operator)
    paths = [
        (f"/tenants/{tenant.pk}/domains/", {"domain": "other.example.com"}),
        (f"/tenants/{tenant.pk}/domains/{domain.pk}/verify/", {}),
        (f"/tenants/{tenant.pk}/domains/{domain.pk}/remove/", {}),
    ]
    for path, data in paths:
        anonymous = Client().post(path, data)
        assert anonymous.status_code == 302 and "/login" in anonymous["Location"]
        assert client_for(viewer).post(path, data).status_code == 403
        assert client_for(outsider).post(path, data).status_code == 403
        assert client_for(operator).get(path).status_code == 405  # changes need POST
    domain.refresh_from_db()
    assert not domain.verified and not Domain.objects.filter(domain="other.example.com").exists()


def test_the_api_adds_verifies_and_removes_domains_for_operators(tenant, api_client_for, operator):
    client = api_client_for(operator)
    response = client.post(f"/api/tenants/{tenant.pk}/domains", {"domain": CUSTOM}, "application/json")
    assert response.status_code == 201
    data = response.json()
    assert data["domain"] == CUSTOM and data["verified"] is False
    assert data["txt_record"] == f"_saas-verify.{CUSTOM}" and len(data["txt_value"]) == 32
    bad = client.post(f"/api/tenants/{tenant.pk}/domains", {"domain": "bad_domain"}, "application/json")
    assert bad.status_code == 422 and "is not a valid domain name" in bad.json()["detail"]
    verify = client.post(f"/api/tenants/{tenant.pk}/domains/{data['id']}/verify")
    assert verify.status_code == 200 and verify.json()["verified"] is True
    assert client.post(f"/api/tenants/{tenant.pk}/domains/{data['id']}/verify").status_code == 409
    primary = tenant.domains.get(is_primary=True)
    assert client.delete(f"/api/tenants/{tenant.pk}/domains/{primary.pk}").status_code == 409
    assert client.delete(f"/api/tenants/{tenant.pk}/domains/{data['id']}").status_code == 204
    assert not Domain.objects.filter(domain=CUSTOM).exists()


def test_the_api_refuses_anonymous_callers_and_viewers(tenant, api_client_for, viewer, operator):
    domain = services.domain_add(tenant=tenant, domain=CUSTOM, actor=operator)
    add = f"/api/tenants/{tenant.pk}/domains"
    one = f"/api/tenants/{tenant.pk}/domains/{domain.pk}"
    assert Client().post(add, {"domain": "x.example.com"}, "application/json").status_code == 401
    assert Client().post(f"{one}/verify").status_code == 401
    assert Client().delete(one).status_code == 401
    client = api_client_for(viewer)
    assert client.post(add, {"domain": "x.example.com"}, "application/json").status_code == 403
    assert client.post(f"{one}/verify").status_code == 403
    assert client.delete(one).status_code == 403
    domain.refresh_from_db()
    assert not domain.verified and not Domain.objects.filter(domain="x.example.com").exists()
