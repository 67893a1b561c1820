"""The Exports card, its buttons, the API and the owner's link: who may, bad input, paging.
Exports and restores themselves are exercised in test_exports.py."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from tenants.exports.jobs import export_path
from tenants.models import Tenant, TenantExport

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture(autouse=True)
def _exports_dir(settings, tmp_path):
    settings.TENANCY_EXPORTS_DIR = str(tmp_path / "exports")


def _done_export(tenant: Tenant) -> TenantExport:
    """A finished export with a file, as the job leaves it (the job itself is tested elsewhere)."""
    export = TenantExport.objects.create(
        tenant=tenant, reason="on_demand", state="done", source_isolation=tenant.isolation, size=3, rows=1,
        finished_at=timezone.now(),
    )  # fmt: skip
    path = export_path(export)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"zip")
    TenantExport.objects.filter(pk=export.pk).update(file_name=str(path.name))
    return export


def _urls(tenant: Tenant, export: TenantExport) -> dict[str, str]:
    return {
        "card": reverse("tenants:exports", args=[tenant.pk]),
        "create": reverse("tenants:export_create", args=[tenant.pk]),
        "download": reverse("tenants:export_download", args=[tenant.pk, export.pk]),
        "restore": reverse("tenants:export_restore", args=[tenant.pk, export.pk]),
    }


def test_anonymous_visitors_are_sent_to_sign_in(client, tenant_world):
    tenant = tenant_world["schema"][0]
    urls = _urls(tenant, _done_export(tenant))
    for name, url in urls.items():
        response = client.post(url) if name in ("create", "restore") else client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"], name


def test_an_outsider_without_a_role_gets_nothing(client_for, outsider, tenant_world):
    tenant = tenant_world["schema"][0]
    urls = _urls(tenant, _done_export(tenant))
    client = client_for(outsider)
    assert client.get(urls["card"]).status_code == 403
    assert client.get(urls["download"]).status_code == 403
    assert client.post(urls["create"]).status_code == 403
    assert client.post(urls["restore"], {"confirm": tenant.slug}).status_code == 403


def test_viewers_see_the_list_but_may_not_export_download_or_restore(client_for, viewer, tenant_world):
    tenant = tenant_world["shared"][0]
    export = _done_export(tenant)
    urls = _urls(tenant, export)
    client = client_for(viewer)
    card = client.get(urls["card"])
    assert card.status_code == 200 and "On demand" in card.content.decode()
    assert "Export now" not in card.content.decode() and "Download" not in card.content.decode()
    assert client.get(urls["download"]).status_code == 403
    assert client.post(urls["create"]).status_code == 403
    assert client.post(urls["restore"], {"confirm": tenant.slug}).status_code == 403
    assert TenantExport.objects.filter(tenant=tenant).count() == 1
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE


def test_an_operator_exports_and_downloads_but_may_not_restore(client_for, operator, tenant_world):
    tenant = tenant_world["dedicated"][0]
    export = _done_export(tenant)
    urls = _urls(tenant, export)
    client = client_for(operator)
    page = client.get(reverse("tenants:detail", args=[tenant.pk])).content.decode()
    assert "Export now" in page and "Download" in page and 'name="confirm" placeholder="type' not in page
    client.post(urls["create"])
    started = TenantExport.objects.filter(tenant=tenant).exclude(pk=export.pk).get()
    assert started.reason == "on_demand" and started.job_id
    assert AuditEntry.objects.filter(action="tenant.export", target_id=str(tenant.pk)).exists()
    again = client.post(urls["create"], follow=True)
    assert "already running" in again.content.decode()
    download = client.get(urls["download"])
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"zip"
    assert download["Content-Disposition"].startswith("attachment") and download["Cache-Control"] == "no-store"
    assert AuditEntry.objects.filter(action="tenant.export_download", target_id=str(tenant.pk)).exists()
    assert client.post(urls["restore"], {"confirm": tenant.slug}).status_code == 403


def test_a_download_of_an_unfinished_or_foreign_export_is_not_found(client_for, operator, tenant_world):
    a, b = tenant_world["schema"]
    export = _done_export(a)
    client = client_for(operator)
    assert client.get(reverse("tenants:export_download", args=[b.pk, export.pk])).status_code == 404
    TenantExport.objects.filter(pk=export.pk).update(state="running")
    assert client.get(reverse("tenants:export_download", args=[a.pk, export.pk])).status_code == 404


def _real_export(tenant: Tenant) -> TenantExport:
    """An export with a real file of the tenant's committed rows, written as the job writes it."""
    from tenants.exports.jobs import export_write

    export = TenantExport.objects.create(tenant=tenant, reason="on_demand", source_isolation=tenant.isolation)
    TenantExport.objects.filter(pk=export.pk).update(state="done", **export_write(export, lambda done, total: None))
    export.refresh_from_db()
    return export


def test_an_admin_restores_in_place_only_with_the_slug_typed(client_for, platform_admin, tenant_world):
    tenant = tenant_world["schema"][1]
    export = _real_export(tenant)
    url = _urls(tenant, export)["restore"]
    client = client_for(platform_admin)
    for wrong in ("", tenant.slug.upper(), "x" * 5000):
        response = client.post(url, {"confirm": wrong}, follow=True)
        assert "Type the tenant" in response.content.decode()
    nul = client.post(url, f"confirm={tenant.slug}%00", content_type="application/x-www-form-urlencoded")
    assert nul.status_code == 400 and "NUL" in nul.content.decode()  # what a browser's form sends
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    assert not TenantExport.objects.filter(tenant=tenant, reason="restore_point").exists()
    client.post(url, {"confirm": tenant.slug})
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.MOVING and tenant.status_reason == "restoring"
    point = TenantExport.objects.get(tenant=tenant, reason="restore_point")
    assert point.job.batch == 0 and point.job.group_type == "tenant_restore"
    assert AuditEntry.objects.filter(action="tenant.restore", target_id=str(tenant.pk)).exists()


def test_the_card_pages_through_many_exports(client_for, viewer, tenant_world):
    tenant = tenant_world["shared"][1]
    for _ in range(12):
        _done_export(tenant)
    client = client_for(viewer)
    first = client.get(reverse("tenants:detail", args=[tenant.pk])).content.decode()
    assert "page 1 of 2" in first and first.count("On demand</td>") + first.count("On demand<div") == 10
    second = client.get(reverse("tenants:exports", args=[tenant.pk]) + "?page=2").content.decode()
    assert "page 2 of 2" in second
    empty = client.get(reverse("tenants:exports", args=[tenant_world["schema"][0].pk])).content.decode()
    assert "No exports yet" in empty


def test_the_api_lists_for_viewers_exports_for_operators_restores_for_admins(
    api_client_for, viewer, operator, platform_admin, tenant_world
):
    tenant = tenant_world["shared"][0]
    export = _done_export(tenant)
    base = f"/api/tenants/{tenant.pk}/exports"
    listing = api_client_for(viewer).get(base)
    assert listing.status_code == 200 and listing.json()["items"][0]["id"] == str(export.pk)
    assert api_client_for(viewer).post(base).status_code == 403
    assert api_client_for(viewer).get(f"{base}/{export.pk}/download").status_code == 403
    created = api_client_for(operator).post(base)
    assert created.status_code == 202 and created.json()["state"] == "pending"
    assert api_client_for(operator).post(base).status_code == 409
    download = api_client_for(operator).get(f"{base}/{export.pk}/download")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"zip"
    restore = f"{base}/{export.pk}/restore"
    body = json.dumps({"confirm": tenant.slug})
    assert api_client_for(operator).post(restore, body, content_type="application/json").status_code == 403
    for nasty in ({"confirm": 5}, {}, {"confirm": "a" * 101}, {"confirm": "x"}, {"confirm": "a\x00"}):
        response = api_client_for(platform_admin).post(restore, json.dumps(nasty), content_type="application/json")
        assert response.status_code in (400, 422) and response.json()["detail"]
    assert api_client_for(platform_admin).get(f"{base}/not-a-uuid/download").status_code == 400
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE


def test_an_owner_link_that_is_malformed_or_unknown_is_not_found(client):
    for token in ("nope", "exp_" + "a" * 43, "exp_" + "x" * 200):
        assert client.get(reverse("tenants:export_owner_download", args=[token])).status_code == 404
    assert client.get("/tenants/exports/owner/exp_%00/").status_code == 400


def test_the_commands_refuse_unknown_tenants_and_missing_files(tenant_world, tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="There is no tenant"):
        call_command("export_tenant", "no-such-tenant")
    with pytest.raises(CommandError, match="There is no file"):
        call_command("restore_tenant", str(tmp_path / "missing.zip"))
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(CommandError, match="not a tenant export"):
        call_command("restore_tenant", str(tmp_path / "x.zip"), "--as", "fresh-slug")


def test_deleting_a_tenant_starts_its_final_export_before_the_deletion(client_for, platform_admin, tenant_world):
    tenant = tenant_world["shared"][1]
    client_for(platform_admin).post(reverse("tenants:delete", args=[tenant.pk]), {"confirm": tenant.slug})
    final = TenantExport.objects.get(tenant=tenant, reason="offboarding")
    assert final.job.group_type == "tenant_deletion" and final.job.batch == 0
    start = final.job.__class__.objects.get(group_type="tenant_deletion", group_id=final.job.group_id, batch=1)
    assert start.kind == "tenants.delete_start"
