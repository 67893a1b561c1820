"""Real-browser tests of the screens that show long work live, with a real Celery worker.

Chromium (tests/support/browser.py) against the live server; sagas and migration jobs run in one
solo Celery worker on a private broker (tests/support/sagas.py::CeleryHarness), shared by the
module. Tests that watch progress stop the worker first, so the screen is seen *before* anything
ran, then start it and watch the same page change in place (htmx polling) until the work is done:

- an operator provisions one tenant of each isolation level from the dashboard, each saga's
  monitor goes from "0 of N steps" to completed, and the Tenants screen lists all three active;
- the owner of an operator-provisioned tenant follows the set-password link the worker emailed (the
  worker has PORT like under `make run`) to `<slug>.localhost:<live server's port>`;
- self-signup on the live server's port (not 8000): the emailed link, the progress page, and the
  hand-over to the new workspace on `<slug>.localhost:<that port>`, signed in;
- a migration run started from the Migrations screen: its progress bar fills without a reload;
- the event viewer's point-in-time slider: the state shown is the state at the chosen version.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import uuid

import pytest
from django.core import mail

from core.permissions import Role
from saas_admin.devmail import mailbox_list
from tests.support.browser import (
    assert_not_reloaded,
    no_reload_marker,
    screenshot_on_failure,
    sign_in_operator,
    snap,
)
from tests.support.sagas import CeleryHarness
from tests.support.tenancy import ISOLATIONS, remove_tenants, unique_slug
from tests.support.workers import kill

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(databases="__all__", transaction=True),
]

WORK_TIMEOUT_MS = 90_000  # a loaded CI machine provisioning a dedicated database


@pytest.fixture(scope="module")
def celery(django_db_setup, django_db_blocker, live_server, tenancy_templates):
    """Beat and a private broker for the module; the worker is started by the tests that need it.
    The worker gets PORT like `make run` gives it, so links it makes follow the live server."""
    port = live_server.url.rsplit(":", 1)[1]
    mailbox = tempfile.mkdtemp(prefix="browser-mailbox-")  # what the worker sends, as `make run` keeps it
    harness = CeleryHarness(
        {"PORT": port, "EMAIL_BACKEND": "saas_admin.devmail.MailboxBackend", "DEV_MAILBOX_DIR": mailbox}
    ).start(worker=False)
    harness.mailbox = mailbox
    yield harness
    kill(harness.worker)  # every test waited for its work to finish: a warm shutdown only costs time
    kill(harness.beat)
    harness.stop()
    shutil.rmtree(mailbox, ignore_errors=True)


@pytest.fixture
def ui_tenants(allow_tenant_aliases):
    """Slugs of tenants the browser creates; removed (schema, database, roles) after the test. The live
    server may open the aliases of tenant hosts that appear during the test (allow_tenant_aliases)."""
    slugs: list[str] = []
    yield slugs
    from tenants.models import Tenant

    remove_tenants(list(Tenant.objects.select_related("placement").filter(slug__in=slugs)))


def wait_until_done(tab, selector: str, celery: CeleryHarness) -> None:
    """Wait for the badge that says the work finished, restarting the worker if it died (as
    wait_for_sagas does); on a timeout, the worker's and beat's logs say why."""
    deadline = time.monotonic() + WORK_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        if celery.ensure_worker():
            print(f"the worker had died and was restarted:\n{celery.logs()}")
        if tab.locator(selector).count():
            return
        tab.wait_for_timeout(250)
    alive = celery.worker is not None and celery.worker.poll() is None
    raise AssertionError(f"{selector} never appeared; worker alive: {alive}\n{celery.logs()}")


def progress_counts(text: str) -> tuple[int, int]:
    found = re.search(r"(\d+) of (\d+)", text)
    assert found, text
    return int(found[1]), int(found[2])


def test_an_operator_provisions_each_isolation_level_and_watches_every_saga_finish_live(
    page, live_server, celery, make_operator, ui_tenants
):
    from tenants.models import Tenant

    celery.stop_worker()  # nothing runs until every monitor has been seen at its start
    sign_in_operator(page, live_server, make_operator(Role.OPERATOR))
    monitors = {}
    with screenshot_on_failure(page, "provision_each_level"):
        for isolation in ISOLATIONS:
            slug = unique_slug(f"ui{isolation[:3]}")
            ui_tenants.append(slug)
            tab = page if not monitors else page.context.new_page()
            tab.goto(f"{live_server.url}/tenants/new/")
            tab.fill("#id_slug", slug)
            tab.fill("#id_name", f"Browser {isolation}")
            tab.select_option("#id_isolation", isolation)
            tab.click("button:has-text('Start provisioning')")
            tab.wait_for_url(re.compile(r"/sagas/[^/]+/$"))
            assert slug in tab.inner_text("h1")
            done, total = progress_counts(tab.inner_text("#saga-live .progress-label"))
            assert done == 0 and total >= 5, "no step ran before the worker started"
            no_reload_marker(tab)
            monitors[isolation] = (slug, tab)
        snap(page, "provision_saga_waiting")
        celery.start_worker()
        for isolation, (_slug, tab) in monitors.items():
            with screenshot_on_failure(tab, f"provision_{isolation}"):
                wait_until_done(tab, "#saga-live .card-header .badge-completed", celery)
                done, total = progress_counts(tab.inner_text("#saga-live .progress-label"))
                assert done == total
                assert tab.locator("#saga-live tbody .badge-completed").count() == total  # every step row
                assert "nothing left to do" in tab.inner_text("#saga-live")
                assert_not_reloaded(tab)  # it got there by itself, in place
        snap(monitors["dedicated"][1], "provision_saga_completed")
        page.goto(f"{live_server.url}/tenants/")
        for isolation, (slug, _tab) in monitors.items():
            row = page.locator("tr", has_text=slug)
            assert row.locator(".badge-active").inner_text() == "Active", isolation
        snap(page, "provision_tenant_list")
    assert set(Tenant.objects.filter(slug__in=ui_tenants).values_list("isolation", "status")) == {
        (isolation, Tenant.Status.ACTIVE) for isolation in ISOLATIONS
    }


def test_the_owner_of_a_provisioned_tenant_follows_the_emailed_link_to_the_workspace_on_this_port(
    page, live_server, celery, make_operator, ui_tenants, settings
):
    """The worker sends the set-password email and builds its link from PORT, as under `make run`."""
    port = live_server.url.rsplit(":", 1)[1]
    settings.DEV_MAILBOX_DIR = celery.mailbox  # read what the worker wrote
    celery.stop_worker()  # each test starts its own worker: nothing left over from the last one
    slug = unique_slug("owned")
    ui_tenants.append(slug)
    sign_in_operator(page, live_server, make_operator(Role.OPERATOR))
    with screenshot_on_failure(page, "owner_set_password"):
        page.goto(f"{live_server.url}/tenants/new/")
        page.fill("#id_slug", slug)
        page.fill("#id_owner_email", "olga@example.test")
        page.click("button:has-text('Start provisioning')")
        page.wait_for_url(re.compile(r"/sagas/[^/]+/$"))
        celery.start_worker()
        wait_until_done(page, "#saga-live .card-header .badge-completed", celery)
        sent = [m for m in mailbox_list() if m.to == "olga@example.test"]
        assert len(sent) == 1
        link = re.search(r"http://\S+/set-password/\S+/", sent[0].body)
        assert link and link[0].startswith(f"http://{slug}.localhost:{port}/set-password/"), sent[0].body
        page.goto(link[0])
        assert "Choose your password" in page.inner_text("h1")
        page.fill("#id_password", "olga-owns-this-workspace-1")
        page.fill("#id_confirm", "olga-owns-this-workspace-1")
        page.click("button:has-text('Set password')")
        page.wait_for_url(f"http://{slug}.localhost:{port}/members/")
        assert "Your password is set" in page.inner_text("body")
        assert "olga@example.test" in page.inner_text("table")
        snap(page, "owner_workspace")


def test_self_signup_on_another_port_ends_signed_in_in_the_workspace_on_that_port(
    page, live_server, celery, settings, ui_tenants
):
    port = live_server.url.rsplit(":", 1)[1]
    assert port != "8000"
    settings.TENANCY_WORKSPACE_PORT = port  # what `PORT=<port> make run` derives (tests/test_defects.py)
    celery.stop_worker()
    slug = unique_slug("signup")
    ui_tenants.append(slug)
    mail.outbox = []
    with screenshot_on_failure(page, "self_signup"):
        page.goto(f"{live_server.url}/signup/")
        page.fill("#id_name", "Port Pioneers")
        page.fill("#id_slug", slug)
        page.wait_for_selector(f"#slug-status:has-text('{slug}.localhost is available')")
        page.fill("#id_email", "pia@example.test")
        page.fill("#id_password", "pioneers-pick-a-long-password")
        page.select_option("#id_plan", "free")
        snap(page, "signup_form")
        page.click("button:has-text('Create workspace')")
        page.wait_for_url(re.compile(r"/signup/sent/$"))
        assert "pia@example.test" in page.inner_text("body")
        snap(page, "signup_sent")
        link = re.search(r"http://\S+/signup/verify/\S+/", mail.outbox[-1].body)
        assert link and link[0].startswith(f"{live_server.url}/"), mail.outbox[-1].body
        page.goto(link[0])
        page.wait_for_url(re.compile(r"/signup/progress/"))
        assert page.inner_text("h1") == "Creating Port Pioneers"
        done, total = progress_counts(page.inner_text("#progress-live .progress-label"))
        assert done == 0 and total > 0
        snap(page, "signup_progress")
        celery.start_worker()
        # The progress page hands over by itself once the saga completes, to this port, not 8000.
        page.wait_for_url(f"http://{slug}.localhost:{port}/members/", timeout=WORK_TIMEOUT_MS)
        assert page.locator("text=Signed in as").inner_text().endswith("pia")  # the owner, named from the email
        assert "Port Pioneers" in page.inner_text("body") and "pia@example.test" in page.inner_text("table")
        snap(page, "signup_workspace")
        page.reload()  # a real session on the tenant host, not a one-off page
        assert page.url == f"http://{slug}.localhost:{port}/members/"


def test_a_migration_runs_progress_bar_fills_in_place_until_the_run_completes(
    page, live_server, celery, make_operator, make_tenant
):
    from tenants.migration_state import placement_state_refresh
    from tests.support.migrations import unapply_latest

    tenants = [make_tenant("schema", seed=False), make_tenant("shared", seed=False)]
    for tenant in tenants:
        key = unapply_latest(tenant.placement)
        placement_state_refresh(tenant.placement)
    celery.stop_worker()
    sign_in_operator(page, live_server, make_operator(Role.ADMIN))
    with screenshot_on_failure(page, "migration_run"):
        page.goto(f"{live_server.url}/migrations/")
        pending = page.locator("tr", has_text=tenants[0].placement.schema_name).inner_text()
        assert "1 pending" in pending and f"{key[0]}.{key[1]}" in pending
        snap(page, "migrations_pending")
        page.click("button:has-text('Start run')")
        page.wait_for_url(re.compile(r"/migrations/runs/[0-9a-f-]+/$"))
        label = page.locator("#live .progress-label")
        done, with_work = progress_counts(label.inner_text())
        assert label.inner_text().startswith("0% ·") and done == 0 and with_work >= 2  # ours (and any stale template)
        bar = page.locator("#live .progress-bar").first
        assert bar.get_attribute("style") == "width: 0%"
        no_reload_marker(page)
        page.fill("#f-q", "t_sch")  # typed while the rows refresh around it: kept (hx-preserve)
        snap(page, "migration_run_waiting")
        celery.start_worker()
        wait_until_done(page, "#live .card-header .badge-completed", celery)
        assert label.inner_text().startswith(f"100% · {with_work} of {with_work} placements with work finished")
        assert page.locator("#live .progress-bar").first.get_attribute("style") == "width: 100%"
        assert page.locator("#live tbody .badge-succeeded").count() == with_work
        for tenant in tenants:
            assert "Succeeded" in page.locator("#live tbody tr", has_text=tenant.placement.schema_name).inner_text()
        assert page.locator("#run-actions button:has-text('Cancel run')").count() == 0  # gone once it ended
        assert page.input_value("#f-q") == "t_sch"
        assert_not_reloaded(page)
        snap(page, "migration_run_completed")


def test_the_point_in_time_slider_shows_the_state_at_the_chosen_version(page, live_server, make_operator):
    from django.db import transaction

    from events.services import control_event_append

    aggregate_id = str(uuid.uuid4())
    history = [
        ("TenantRegistered", {"status": "pending", "plan": "free", "name": "Slider Ltd"}),
        ("TenantActivated", {"status": "active"}),
        ("TenantPlanChanged", {"plan": "business"}),
        ("TenantSuspended", {"status": "suspended"}),
    ]
    for event_type, data in history:
        with transaction.atomic():  # one transaction each: four distinct instants
            control_event_append(aggregate_type="tenant", aggregate_id=aggregate_id, event_type=event_type, data=data)
    sign_in_operator(page, live_server, make_operator(Role.VIEWER))
    panel = page.locator("#state-panel")
    with screenshot_on_failure(page, "event_slider"):
        page.goto(f"{live_server.url}/events/aggregate/tenant/{aggregate_id}/")
        assert panel.locator("p").inner_text().startswith("After version 4")
        assert '"status": "suspended"' in panel.inner_text() and '"plan": "business"' in panel.inner_text()
        assert '{"status": "active"}' in page.locator("table").inner_text()  # the timeline shows data as JSON
        no_reload_marker(page)
        page.fill("#v", "1")  # drag the slider to the first version
        page.wait_for_selector("#state-panel p:has-text('After version 1')")
        state = panel.locator("pre").inner_text()
        assert '"status": "pending"' in state and '"plan": "free"' in state
        snap(page, "event_slider_v1")
        page.fill("#v", "3")
        page.wait_for_selector("#state-panel p:has-text('After version 3')")
        state = panel.locator("pre").inner_text()
        assert '"status": "active"' in state and '"plan": "business"' in state and "suspended" not in state
        assert_not_reloaded(page)
        snap(page, "event_slider_v3")
