"""Nothing is lost when a tenant moves: real HTTP writes to the moving tenant and to a busy
neighbour in the same pool, all through the move; then every acknowledged write is in the
target, the neighbour is untouched, and isolation holds on the moved tenant.

The web server is pytest-django's live server (a real WSGI server on 127.0.0.1, requests with the
tenants' Host headers); the move saga's jobs run in this process through the job engine while the
writer threads post ledger deposits. A deposit is *acknowledged* when the server answered 302 to
the ledger page; a 409 (the freeze) is retried after a pause, as the Retry-After header asks.
"""

from __future__ import annotations

import re
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
import requests
from django.db import connections

from core.actors import SystemActor
from jobs.services import jobs_work_inline
from sagas.models import SagaState, SagaStep
from sagas.services import saga_run_inline
from tenants.context import tenant_context
from tenants.logs import tenant_log_store
from tenants.models import Tenant, TenantMove
from tenants.moves.services import tenant_move
from tests.support.tenancy import MEMBER_PASSWORD
from workspace.models import Account, Member

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])


class Writer(threading.Thread):
    """Signs in as the tenant's owner over HTTP and deposits 1.00 again and again, each with a unique note."""

    def __init__(self, base: str, tenant: Tenant, name: str) -> None:
        super().__init__(daemon=True, name=name)
        self.base, self.host, self.prefix = base, f"{tenant.slug}.localhost", name
        self.http = requests.Session()
        self.http.headers["Host"] = self.host
        self.acknowledged: list[str] = []
        self.refused: list[tuple[int, str | None]] = []  # (status, Retry-After) of 409s
        self.reads_while_moving: list[int] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.account_id = 0

    def _csrf(self, path: str) -> str:
        page = self.http.get(self.base + path, timeout=30)
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert found, f"no form at {path}: {page.status_code}"
        return found.group(1)

    def sign_in(self, tenant: Tenant) -> None:
        token = self._csrf("/login/")
        response = self.http.post(
            self.base + "/login/", {"csrfmiddlewaretoken": token, "email": f"owner@{tenant.slug}.test",
                                    "password": MEMBER_PASSWORD}, allow_redirects=False, timeout=30,
        )  # fmt: skip
        assert response.status_code == 302, response.text[:300]
        with tenant_context(tenant) as alias:
            self.account_id = Account.objects.using(alias).order_by("pk").values_list("pk", flat=True)[0]

    def run(self) -> None:
        token = self._csrf(f"/accounts/{self.account_id}/ledger/")
        n = 0
        while not self.stop.is_set():
            note = f"{self.prefix}-{n}"
            try:
                response = self.http.post(
                    f"{self.base}/accounts/{self.account_id}/ledger/move/",
                    {"csrfmiddlewaretoken": token, "kind": "deposit", "amount": "1.00", "note": note},
                    allow_redirects=False, timeout=30,
                )  # fmt: skip
            except requests.RequestException as exc:  # not acknowledged: may or may not have happened
                self.errors.append(repr(exc))
                continue
            if response.status_code == 302 and "/ledger/" in response.headers.get("Location", ""):
                self.acknowledged.append(note)
                n += 1
            elif response.status_code == 409:
                self.refused.append((409, response.headers.get("Retry-After")))
                self.reads_while_moving.append(self.http.get(f"{self.base}/accounts/", timeout=30).status_code)
                time.sleep(0.05)  # the test's stand-in for Retry-After seconds
            else:
                self.errors.append(f"{response.status_code}: {response.text[:200]}")
                time.sleep(0.05)


def deposits_in_log(tenant: Tenant) -> list[str]:
    tenant = Tenant.objects.select_related("placement").get(pk=tenant.pk)
    log = tenant_log_store(tenant)
    with log.session() as alias, connections[alias].cursor() as cursor:
        cursor.execute("SELECT event_data->>'note' FROM tenantlog_event WHERE event_type = 'ledger.deposited'")
        return [row[0] for row in cursor.fetchall()]


def wait_for(condition: Any, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_every_acknowledged_write_survives_the_move_and_the_neighbour_is_untouched(
    live_server, make_tenant, allow_tenant_aliases, settings
):
    settings.TENANCY_MOVE_PURGE_GRACE_SECONDS = 0
    mover, neighbour = make_tenant("shared"), make_tenant("shared")
    assert mover.placement_id == neighbour.placement_id, "both in one pool"
    with tenant_context(mover) as alias:  # enough rows that the bulk copy takes a moment
        Member.objects.using(alias).bulk_create(
            Member(name=f"Bulk {i}", email=f"bulk{i}@{mover.slug}.test") for i in range(20_000)
        )
    a, b = Writer(live_server.url, mover, "mover"), Writer(live_server.url, neighbour, "neighbour")
    a.sign_in(mover)
    b.sign_in(neighbour)
    neighbour_pool = neighbour.placement_id
    with tenant_context(neighbour) as alias:
        neighbour_members = sorted(Member.objects.using(alias).values_list("pk", "email", "password"))
    a.start()
    b.start()
    try:
        wait_for(lambda: len(a.acknowledged) >= 5 and len(b.acknowledged) >= 5)
        move = tenant_move(tenant=mover, to="dedicated", actor=SystemActor("tests"))
        saga = saga_run_inline(saga_id=move.saga_id, timeout=300)
        assert saga.state == SagaState.COMPLETED, saga.error
        after_switch = len(a.acknowledged)
        wait_for(lambda: len(a.acknowledged) >= after_switch + 5)
    finally:
        a.stop.set()
        b.stop.set()
        a.join(60)
        b.join(60)
    move.refresh_from_db()
    mover.refresh_from_db()
    assert move.state == TenantMove.State.SWITCHED
    assert mover.isolation == "dedicated" and mover.placement.kind == "database"

    # Every acknowledged write of the moved tenant is in its new placement, once; nothing else is.
    assert not a.errors, a.errors[:3]
    logged = deposits_in_log(mover)
    assert sorted(logged) == sorted(a.acknowledged)
    with tenant_context(mover) as alias:
        balance = Account.objects.using(alias).get(pk=a.account_id).balance
    assert balance == Decimal("100.00") + len(a.acknowledged)  # seeded at 100.00, +1.00 per deposit
    assert tenant_log_store(mover).verify_chain().ok
    # Writes during the freeze were refused with Retry-After, and reads went on.
    assert all(status == 409 and retry == "5" for status, retry in a.refused)
    assert all(status == 200 for status in a.reads_while_moving)

    # The neighbour kept writing the whole time, stayed in its pool, and lost nothing.
    assert not b.errors, b.errors[:3]
    neighbour.refresh_from_db()
    assert neighbour.placement_id == neighbour_pool and neighbour.status == Tenant.Status.ACTIVE
    assert sorted(deposits_in_log(neighbour)) == sorted(b.acknowledged)
    assert not b.refused, "the neighbour was never frozen"
    with tenant_context(neighbour) as alias:
        assert sorted(Member.objects.using(alias).values_list("pk", "email", "password")) == neighbour_members
        assert not Member.objects.using(alias).filter(email__endswith=f"@{mover.slug}.test").exists()

    # Isolation on the moved tenant: nobody else's rows, nothing without a tenant context.
    with tenant_context(mover) as alias:
        assert Member.objects.using(alias).count() == 20_003
        assert not Member.objects.using(alias).filter(email__endswith=f"@{neighbour.slug}.test").exists()
    with connections[mover.placement.database_alias].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM workspace_member")  # no tenant context: fail closed
        assert cursor.fetchone()[0] == 0
    foreign = requests.get(
        f"{live_server.url}/members/", headers={"Host": f"{neighbour.slug}.localhost"},
        cookies=a.http.cookies, allow_redirects=False, timeout=30,
    )  # fmt: skip
    assert foreign.status_code == 302 and "/login/" in foreign.headers["Location"]  # A's session means nothing on B
    for st in SagaStep.objects.filter(saga_id=move.saga_id).order_by("index"):
        print(st.name, st.started_at.strftime("%S.%f"), st.finished_at.strftime("%S.%f"))  # noqa: T201
    jobs_work_inline(group=("tenant_move", move.pk), timeout=60)  # the purge, not waiting for the grace period
    move.refresh_from_db()
    assert move.state == TenantMove.State.PURGED
    with tenant_context(neighbour) as alias:  # the purge of the pool took nothing of the neighbour's
        assert sorted(Member.objects.using(alias).values_list("pk", "email", "password")) == neighbour_members
    print(  # noqa: T201 - the figures the report quotes
        f"\nacknowledged: mover {len(a.acknowledged)}, neighbour {len(b.acknowledged)}; "
        f"409s during the freeze: {len(a.refused)}; freeze {move.freeze_seconds:.3f} s; "
        f"rows {move.rows_copied}/{move.rows_total}, delta {move.delta_rows}"
    )
