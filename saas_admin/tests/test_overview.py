from __future__ import annotations

import re

import pytest
from django.template import Context, Template
from django.test import RequestFactory

from audit.services import audit_record
from core import overview
from core.permissions import Role

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_non_staff_users_get_403(client_for, outsider):
    assert client_for(outsider).get("/").status_code == 403


def test_staff_without_a_role_get_403(client_for, make_operator):
    assert client_for(make_operator(None)).get("/").status_code == 403


def test_viewers_see_health_operator_counts_and_recent_activity(client_for, viewer, operator, platform_admin):
    audit_record(actor=platform_admin, action="operator.create", summary="Created operator someone")
    response = client_for(viewer).get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "System health" in html and "Database" in html and "Broker" in html
    (operators_panel,) = [p for p in response.context["panels"] if p.template_name == "dashboard/panels/operators.html"]
    counts = operators_panel.context["counts"]
    assert counts["Admin"] == 1 and counts["Operator"] == 1 and counts["Viewer"] == 1
    assert "Created operator someone" in html
    # The layout: role badge, POST sign-out, navigation to sections that exist.
    assert 'class="badge badge-role-viewer"' in html
    assert 'action="/logout/"' in html
    assert 'href="/audit/"' in html


def test_only_admins_see_the_operators_link(client_for, viewer, platform_admin):
    assert 'href="/operators/"' not in client_for(viewer).get("/").content.decode()
    assert 'href="/operators/"' in client_for(platform_admin).get("/").content.decode()


@pytest.fixture
def temporary_panel():
    names = []

    def register(name, function, **kwargs):
        overview.register_panel(name, **kwargs)(function)
        names.append(name)

    yield register
    for name in names:
        overview.unregister_panel(name)


def test_apps_can_add_panels_without_touching_the_view(client_for, viewer, temporary_panel, tmp_path, settings):
    template = tmp_path / "panel_test.html"
    template.write_text('<section class="card">Tenants tile: {{ panel.answer }}</section>')
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], tmp_path]}]
    temporary_panel("tenants-test", lambda request: overview.Panel("panel_test.html", {"answer": 42}), order=20)
    temporary_panel(
        "admins-only", lambda request: overview.Panel("panel_test.html", {"answer": "secret"}), min_role=Role.ADMIN
    )
    temporary_panel("hidden", lambda request: None)
    html = client_for(viewer).get("/").content.decode()
    assert "Tenants tile: 42" in html
    assert "secret" not in html
    assert html.index("System health") < html.index("Tenants tile") < html.index("Recent activity")


def test_a_broken_panel_does_not_take_the_overview_down(client_for, viewer, temporary_panel):
    def broken(request):
        raise RuntimeError("boom")

    temporary_panel("broken", broken)
    response = client_for(viewer).get("/")
    assert response.status_code == 200
    assert "This panel could not load" in response.content.decode()


def test_nav_items_render_only_when_their_url_name_resolves(viewer):
    request = RequestFactory().get("/audit/")
    request.user = viewer
    html = Template('{% load ui %}{% nav_item "audit:list" "Audit" %}|{% nav_item "nope:list" "Nope" %}').render(
        Context({"request": request})
    )
    assert html.startswith('<a class="nav-link is-current" href="/audit/"')
    assert html.endswith("|")


def test_only_the_servers_link_is_current_on_the_servers_screen(client_for, platform_admin):
    page = client_for(platform_admin).get("/tenants/servers/").content.decode()
    assert re.findall(r'class="nav-link is-current" href="([^"]+)"', page) == ["/tenants/servers/"]
    page = client_for(platform_admin).get("/tenants/").content.decode()
    assert re.findall(r'class="nav-link is-current" href="([^"]+)"', page) == ["/tenants/"]


def test_status_badges_and_progress_render_the_documented_classes():
    html = Template('{% load ui %}{{ "provisioning"|status_badge }} {% progress 3 10 2 %}').render(Context())
    assert '<span class="badge badge-provisioning">Provisioning</span>' in html
    assert 'class="progress-bar" style="width: 30.0%"' in html
    assert 'class="progress-bar progress-bar-failed" style="width: 20.0%"' in html


def test_a_refusal_is_a_styled_page_that_names_the_missing_role(client_for, viewer):
    response = client_for(viewer).get("/operators/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "This needs the Admin role." in html and "public-card" in html and viewer.username in html


def test_unknown_pages_get_the_styled_404(client_for, viewer, settings):
    settings.DEBUG = False
    response = client_for(viewer).get("/no-such-page/")
    assert response.status_code == 404
    assert "Nothing here" in response.content.decode() and "Resolver404" not in response.content.decode()
    response = client_for(viewer).post("/account/tokens/999999/revoke/")
    assert response.status_code == 404
    assert "That token does not exist." in response.content.decode()
