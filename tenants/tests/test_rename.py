"""Renaming a tenant: slug, primary domain and (schema and dedicated levels, through a move) the
storage name; the old host redirects; taken names are refused with nothing changed; the Rename
form, the API and the command, and who may use them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from core.actors import SystemActor
from core.errors import Conflict, InvalidInput
from events.models import Event
from sagas.services import saga_run_inline
from tenants import placements, selectors
from tenants.models import Domain, Tenant, TenantMove
from tenants.rename import tenant_rename
from tenants.tests.test_moves import data_of, purge, with_ledger
from tests.support.tenancy import MEMBER_PASSWORD, unique_slug

ACTOR = SystemActor("tests")


def state_of(tenant: Tenant) -> tuple[Any, ...]:
    tenant = Tenant.objects.select_related("placement").get(pk=tenant.pk)
    domains = sorted(Domain.objects.filter(tenant=tenant).values_list("domain", "is_primary", "redirect_until"))
    placement = tenant.placement
    assert placement is not None
    return (tenant.slug, placement.pk, placement.schema_name, placement.db_name, domains)


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
class TestRenameEachLevel:
    @pytest.fixture(autouse=True)
    def _ready(self, tenancy_templates, allow_tenant_aliases, settings):
        settings.TENANCY_MOVE_PURGE_GRACE_SECONDS = 0
        settings.TENANCY_RENAME_REDIRECT_DAYS = 30

    @pytest.mark.parametrize("level", ["shared", "schema", "dedicated"])
    def test_a_renamed_tenant_keeps_its_rows_at_the_new_host_and_the_old_host_redirects(self, make_tenant, level):
        tenant = with_ledger(make_tenant(level))
        before = data_of(tenant)
        old_slug, old_placement = tenant.slug, tenant.placement
        new_slug = unique_slug("ren")

        renamed, move = tenant_rename(tenant=tenant, new_slug=new_slug, actor=ACTOR)

        assert renamed.slug == new_slug
        if level == "shared":
            assert move is None
        else:
            assert move is not None
            move = _run(move)
            assert move.state == TenantMove.State.SWITCHED, move.error
        renamed.refresh_from_db()
        assert data_of(renamed) == before
        if level == "schema":
            assert renamed.placement.schema_name == f"t_{new_slug.replace('-', '_')}"
        if level == "dedicated":
            assert new_slug.replace("-", "_") in renamed.placement.db_name
        if move is not None:
            purge(move)
            if level == "schema":
                assert not placements.schema_exists(old_placement.schema_name)
            else:
                assert not placements.database_exists(old_placement.db_name)

        client = Client(HTTP_HOST=f"{new_slug}.localhost")
        signed_in = client.post("/login/", {"email": f"owner@{old_slug}.test", "password": MEMBER_PASSWORD})
        assert signed_in.status_code == 302
        page = client.get("/members/")
        assert page.status_code == 200 and f"owner@{old_slug}.test" in page.content.decode()

        old = Client(HTTP_HOST=f"{old_slug}.localhost:8000").get("/members/?page=2")
        assert old.status_code == 307
        assert old["Location"] == f"http://{new_slug}.localhost:8000/members/?page=2"
        event = Event.objects.filter(aggregate_id=str(tenant.pk), event_type="TenantRenamed").get()
        assert (event.event_data["old_slug"], event.event_data["slug"]) == (old_slug, new_slug)
        assert AuditEntry.objects.filter(action="tenant.rename", target_id=str(tenant.pk)).count() == 1

    def test_after_the_redirect_period_the_old_host_is_unknown_and_free_again(self, make_tenant):
        tenant = make_tenant("shared", seed=False)
        old_slug = tenant.slug
        tenant_rename(tenant=tenant, new_slug=unique_slug("ren"), actor=ACTOR)
        Domain.objects.filter(domain=f"{old_slug}.localhost").update(
            redirect_until=timezone.now() - timedelta(seconds=1)
        )
        selectors.host_cache_clear()
        assert Client(HTTP_HOST=f"{old_slug}.localhost").get("/").status_code == 404
        again = make_tenant("shared", seed=False, slug=old_slug)  # provisioning may take the old name now
        assert again.domains.get(is_primary=True).domain == f"{old_slug}.localhost"


@pytest.mark.django_db(databases="__all__")
class TestRenameRefusals:
    def test_a_taken_slug_is_refused_and_nothing_changes(self, tenant_world):
        tenant, other = tenant_world["shared"]
        before = state_of(tenant)
        with pytest.raises(InvalidInput, match=f"The slug “{other.slug}” is already taken"):
            tenant_rename(tenant=tenant, new_slug=other.slug, actor=ACTOR)
        assert state_of(tenant) == before
        assert not AuditEntry.objects.filter(action="tenant.rename").exists()

    def test_a_taken_domain_is_refused_and_nothing_changes(self, tenant_world):
        tenant, other = tenant_world["schema"]
        before = state_of(tenant)
        with pytest.raises(InvalidInput, match=f"The domain {other.slug}.localhost is already taken"):
            tenant_rename(tenant=tenant, new_slug=unique_slug("x"), domain=f"{other.slug}.localhost", actor=ACTOR)
        assert state_of(tenant) == before
        assert not TenantMove.objects.filter(tenant=tenant).exists()

    def test_a_host_still_redirecting_for_another_tenant_is_taken(self, tenant_world):
        tenant, other = tenant_world["shared"]
        Domain.objects.create(
            tenant=other, domain="kept-old.localhost", verified=True, redirect_until=timezone.now() + timedelta(days=3)
        )
        with pytest.raises(InvalidInput, match="The domain kept-old.localhost is already taken"):
            tenant_rename(tenant=tenant, new_slug="kept-old", actor=ACTOR)

    @pytest.mark.parametrize(
        ("slug", "domain", "sentence"),
        [
            ("Bad_Slug", "", "may only contain lowercase letters"),
            ("ab", "", "3 to 40 characters"),
            ("admin", "", "is reserved"),
            ("fine-name", "shop.example.com", "not a verified domain of this tenant"),
            ("fine-name", "bad_label.localhost", "cannot be a tenant's address"),
        ],
    )
    def test_bad_names_are_refused_with_one_sentence(self, tenant_world, slug, domain, sentence):
        tenant = tenant_world["dedicated"][0]
        before = state_of(tenant)
        with pytest.raises(InvalidInput, match=sentence):
            tenant_rename(tenant=tenant, new_slug=slug, domain=domain, actor=ACTOR)
        assert state_of(tenant) == before

    def test_a_suspended_tenant_cannot_be_renamed(self, tenant_world):
        tenant = tenant_world["shared"][0]
        Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
        with pytest.raises(Conflict, match="only an active tenant can be renamed"):
            tenant_rename(tenant=tenant, new_slug=unique_slug("x"), actor=ACTOR)


@pytest.mark.django_db(databases="__all__")
class TestRenameScreensApiCommand:
    def test_anonymous_visitors_are_sent_to_sign_in(self, client, tenant_world):
        tenant = tenant_world["shared"][0]
        response = client.post(reverse("tenants:rename", args=[tenant.pk]), {"slug": "anon-name"})
        assert response.status_code == 302 and "/login" in response["Location"]
        assert Tenant.objects.get(pk=tenant.pk).slug == tenant.slug

    @pytest.mark.parametrize("persona", ["viewer", "operator", "outsider"])
    def test_only_admins_may_rename_on_the_tenant_page(self, client_for, request, tenant_world, persona):
        tenant = tenant_world["shared"][0]
        user = request.getfixturevalue(persona)
        response = client_for(user).post(reverse("tenants:rename", args=[tenant.pk]), {"slug": "not-allowed"})
        assert response.status_code == 403
        assert Tenant.objects.get(pk=tenant.pk).slug == tenant.slug

    @pytest.mark.parametrize("persona", ["viewer", "operator"])
    def test_only_admins_may_rename_through_the_api(self, api_client_for, request, tenant_world, persona):
        tenant = tenant_world["shared"][0]
        api = api_client_for(request.getfixturevalue(persona)).post(
            f"/api/tenants/{tenant.pk}/rename", json.dumps({"slug": "not-allowed"}), content_type="application/json"
        )
        assert api.status_code == 403
        assert Tenant.objects.get(pk=tenant.pk).slug == tenant.slug

    def test_the_api_refuses_anonymous_callers(self, client, tenant_world):
        tenant = tenant_world["shared"][0]
        api = client.post(
            f"/api/tenants/{tenant.pk}/rename", json.dumps({"slug": "not-allowed"}), content_type="application/json"
        )
        assert api.status_code in (401, 403)
        assert Tenant.objects.get(pk=tenant.pk).slug == tenant.slug

    def test_the_rename_button_needs_post(self, client_for, platform_admin, tenant_world):
        response = client_for(platform_admin).get(reverse("tenants:rename", args=[tenant_world["shared"][0].pk]))
        assert response.status_code == 405

    def test_an_admin_renames_from_the_tenant_page(self, client_for, platform_admin, tenant_world):
        tenant = tenant_world["shared"][0]
        client = client_for(platform_admin)
        page = client.get(reverse("tenants:detail", args=[tenant.pk]))
        assert b'action="' + reverse("tenants:rename", args=[tenant.pk]).encode() in page.content
        response = client.post(reverse("tenants:rename", args=[tenant.pk]), {"slug": "Renamed-Shop"}, follow=True)
        assert Tenant.objects.get(pk=tenant.pk).slug == "renamed-shop"
        assert "is now “renamed-shop”" in response.content.decode()
        assert "redirects to the primary until" in response.content.decode()

    def test_the_form_answers_a_taken_slug_with_one_sentence(self, client_for, platform_admin, tenant_world):
        tenant, other = tenant_world["shared"]
        response = client_for(platform_admin).post(
            reverse("tenants:rename", args=[tenant.pk]), {"slug": other.slug}, follow=True
        )
        assert f"The slug “{other.slug}” is already taken; please choose another." in response.content.decode()
        assert Tenant.objects.get(pk=tenant.pk).slug == tenant.slug

    def test_the_form_answers_a_bad_slug_with_one_sentence(self, client_for, platform_admin, tenant_world):
        tenant = tenant_world["shared"][0]
        response = client_for(platform_admin).post(
            reverse("tenants:rename", args=[tenant.pk]), {"slug": "x" * 41}, follow=True
        )
        assert "at most 40 characters" in response.content.decode()
        assert Tenant.objects.get(pk=tenant.pk).slug == tenant.slug

    def test_the_api_renames_and_answers_bad_input_with_a_sentence(self, api_client_for, platform_admin, tenant_world):
        tenant, other = tenant_world["shared"]
        api = api_client_for(platform_admin)
        url = f"/api/tenants/{tenant.pk}/rename"
        taken = api.post(url, json.dumps({"slug": other.slug}), content_type="application/json")
        assert taken.status_code == 422 and "already taken" in taken.json()["detail"]
        wrong_type = api.post(url, json.dumps({"slug": 7}), content_type="application/json")
        assert wrong_type.status_code in (400, 422)
        done = api.post(url, json.dumps({"slug": "api-renamed"}), content_type="application/json")
        assert done.status_code == 200, done.content
        assert done.json() == {"slug": "api-renamed", "domain": "api-renamed.localhost", "move": None}

    def test_the_command_renames_and_refuses_in_one_line(self, tenant_world, capsys):
        tenant, other = tenant_world["shared"]
        with pytest.raises(CommandError, match="There is no tenant"):
            call_command("rename_tenant", "no-such-tenant", "new-name")
        with pytest.raises(CommandError, match="already taken"):
            call_command("rename_tenant", tenant.slug, other.slug)
        call_command("rename_tenant", tenant.slug, "cmd-renamed")
        assert capsys.readouterr().out.strip().splitlines()[-1] == str(tenant.pk)
        assert Tenant.objects.get(pk=tenant.pk).slug == "cmd-renamed"


def _run(move: TenantMove) -> TenantMove:
    saga_run_inline(saga_id=move.saga_id, timeout=120)
    move.refresh_from_db()
    return move
