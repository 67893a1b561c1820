"""The write fence: a process whose host cache still says `active` cannot write to a frozen tenant,
reads of a moving tenant are served read-only, and the freeze waits for a write in flight."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections, transaction
from django.test import Client

from tenants import selectors
from tenants.context import tenant_context
from tenants.models import Tenant
from tenants.moves.fence import fence_exclusive, write_fence
from tests.support.tenancy import MEMBER_PASSWORD
from workspace.models import Member

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("shared")


def signed_in(tenant: Tenant) -> Client:
    client = Client(HTTP_HOST=f"{tenant.slug}.localhost")
    response = client.post("/login/", {"email": f"owner@{tenant.slug}.test", "password": MEMBER_PASSWORD})
    assert response.status_code == 302
    return client


def test_a_stale_host_cache_cannot_write_to_a_frozen_tenant(tenant):
    client = signed_in(tenant)
    assert selectors.tenant_for_host(f"{tenant.slug}.localhost").status == "active"  # cached as active
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.MOVING)  # another process froze it
    response = client.post("/members/new/", {"name": "Late", "email": "late@example.test"})
    assert response.status_code == 409
    assert response["Retry-After"] == "5"
    assert "moving" in response.content.decode().lower()
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.ACTIVE)
    with tenant_context(tenant) as alias:
        assert not Member.objects.using(alias).filter(email="late@example.test").exists()


def test_a_moving_tenant_serves_reads_but_refuses_writes(tenant):
    client = signed_in(tenant)
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.MOVING)
    selectors.host_cache_clear()
    assert client.get("/members/").status_code == 200
    response = client.post("/members/new/", {"name": "X", "email": "x@example.test"})
    assert response.status_code == 409 and response["Retry-After"] == "5"


def test_the_freeze_waits_for_a_write_in_flight_and_later_writes_see_it(tenant):
    held = threading.Event()
    release = threading.Event()
    seen: list[tuple[str, int | None] | None] = []

    def write_in_flight() -> None:
        try:
            with transaction.atomic(using="default"):
                seen.append(write_fence(tenant.pk))
                held.set()
                release.wait(10)
        finally:
            connections.close_all()

    writer = threading.Thread(target=write_in_flight)
    writer.start()
    assert held.wait(10)
    frozen_at: list[float] = []

    def freeze() -> None:
        try:
            with transaction.atomic():
                fence_exclusive(tenant.pk)  # must wait for the writer
                frozen_at.append(time.monotonic())
                Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.MOVING)
        finally:
            connections.close_all()

    freezer = threading.Thread(target=freeze)
    freezer.start()
    time.sleep(0.5)
    assert not frozen_at, "the freeze did not wait for the write in flight"
    released_at = time.monotonic()
    release.set()
    writer.join(10)
    freezer.join(10)
    assert frozen_at and frozen_at[0] >= released_at
    assert seen[0] is not None and seen[0][0] == "active"
    with transaction.atomic():
        fresh = write_fence(tenant.pk)
    assert fresh is not None and fresh[0] == "moving"


def test_hosts_changed_clears_the_host_cache_of_another_process_when_it_commits():
    """The listener a web process runs (tenants.hostcache), here on a thread with its own connection."""
    import psycopg

    from core import dbroles
    from tenants import hostcache
    from tenants.moves.fence import hosts_changed

    cleared = threading.Event()
    stop = threading.Event()
    info = dbroles.conninfo(connections.settings["default"])
    listener = threading.Thread(target=hostcache._listen, args=(info, cleared.set, stop), daemon=True)
    listener.start()
    try:
        assert cleared.wait(10)  # the clear on (re)connecting
        cleared.clear()
        with transaction.atomic():
            hosts_changed()
            time.sleep(0.3)
            assert not cleared.is_set(), "delivered before the commit"
        assert cleared.wait(5), "the other process was not told"
        cleared.clear()
        with psycopg.connect(**info, autocommit=True) as other:  # any committed notification on the channel
            other.execute(f"NOTIFY {hostcache.CHANNEL}")
        assert cleared.wait(5)
    finally:
        stop.set()
        listener.join(5)
    assert not listener.is_alive()
