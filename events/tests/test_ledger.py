"""The event-sourced workspace ledger in every isolation level: commands, inline balance, balance on date X."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from tenants.context import tenant_context
from tenants.logs import tenant_log_store as tenant_store
from tests.support.tenancy import ISOLATIONS, MEMBER_PASSWORD
from workspace import ledger
from workspace.models import Account

pytestmark = pytest.mark.django_db(databases="__all__")


def _two_accounts(alias):
    a, b = Account.objects.using(alias).order_by("pk")[:2]
    return a, b


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_deposits_withdrawals_and_transfers_are_events_and_the_balance_follows_them(tenant_world, isolation):
    tenant, _ = tenant_world[isolation]
    with tenant_context(tenant) as alias:
        a, b = _two_accounts(alias)
        start_a, start_b = a.balance, b.balance
        ledger.ledger_deposit(account_id=a.pk, amount="100.00")
        ledger.ledger_withdraw(account_id=a.pk, amount="30.50")
        ledger.ledger_transfer(from_id=a.pk, to_id=b.pk, amount="19.50", note="rent")
        a.refresh_from_db(using=alias)
        b.refresh_from_db(using=alias)
        assert (a.balance, b.balance) == (start_a + Decimal("50.00"), start_b + Decimal("19.50"))
        store = tenant_store(tenant)
        # The inline projection equals the folded events.
        assert Decimal(store.state_at(ledger.AGGREGATE, str(a.pk)).state["balance"]) == a.balance
        assert Decimal(store.state_at(ledger.AGGREGATE, str(b.pk)).state["balance"]) == b.balance
        sent, received = store.stream(ledger.AGGREGATE, str(a.pk))[-1], store.stream(ledger.AGGREGATE, str(b.pk))[-1]
        assert sent.correlation_id == received.correlation_id and received.causation_id == sent.event_uuid
        with pytest.raises(ValidationError, match="Insufficient funds"):
            ledger.ledger_withdraw(account_id=b.pk, amount=str(b.balance + 1))
        with pytest.raises(ValidationError, match="more than zero"):
            ledger.ledger_deposit(account_id=a.pk, amount="-5")
        assert store.verify_chain().ok


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_balance_on_a_date_is_the_state_at_the_end_of_that_day(tenant_world, isolation):
    tenant, _ = tenant_world[isolation]
    with tenant_context(tenant) as alias:
        account = Account.objects.using(alias).create(name="Dated", currency="EUR")
        store = tenant_store(tenant)
        day = dt.datetime(2031, 5, 1, 9, tzinfo=dt.UTC)
        store.append(ledger.AGGREGATE, str(account.pk), "ledger.opened",
                     {"name": "Dated", "currency": "EUR", "opening_balance": "0"}, occurred_at=day, expected_version=0)  # fmt: skip
        for n, amount in enumerate(["10.00", "5.00", "2.50"]):
            store.append(ledger.AGGREGATE, str(account.pk), "ledger.deposited", {"amount": amount},
                         occurred_at=day + dt.timedelta(days=n), expected_version=n + 1)  # fmt: skip
        end_of = lambda d: dt.datetime(2031, 5, d, 23, 59, 59, tzinfo=dt.UTC)  # noqa: E731
        assert ledger.ledger_balance_at(account_id=account.pk, at=end_of(1)) == Decimal("10.00")
        assert ledger.ledger_balance_at(account_id=account.pk, at=end_of(2)) == Decimal("15.00")
        assert ledger.ledger_balance_at(account_id=account.pk, at=end_of(3)) == Decimal("17.50")
        assert ledger.ledger_balance_at(account_id=account.pk, at=day - dt.timedelta(days=1)) is None


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_members_see_their_ledger_and_record_movements_from_the_page(tenant_world, isolation):
    tenant, other = tenant_world[isolation]
    host = tenant.domains.get(is_primary=True).domain
    client = Client(HTTP_HOST=host)
    assert (
        client.post("/login/", {"email": f"owner@{tenant.slug}.test", "password": MEMBER_PASSWORD}).status_code == 302
    )
    with tenant_context(tenant) as alias:
        account = Account.objects.using(alias).order_by("pk").first()
    response = client.post(f"/accounts/{account.pk}/ledger/move/", {"kind": "deposit", "amount": "12.34"}, follow=True)
    assert response.status_code == 200 and "+12.34" in response.content.decode()
    bad = client.post(f"/accounts/{account.pk}/ledger/move/", {"kind": "withdraw", "amount": "abc"}, follow=True)
    assert "The amount must be a number such as 12.50." in bad.content.decode()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    page = client.get(f"/accounts/{account.pk}/ledger/", {"date": today})
    assert page.context["error"] == "", page.context["error"]
    assert page.context["balance_then"] is not None, [(e.event_type, e.occurred_at) for e in page.context["history"]]
    # Another tenant's member cannot reach this account (RLS: it does not exist for them).
    outsider = Client(HTTP_HOST=other.domains.get(is_primary=True).domain)
    outsider.post("/login/", {"email": f"owner@{other.slug}.test", "password": MEMBER_PASSWORD})
    with tenant_context(other) as alias:
        if not Account.objects.using(alias).filter(pk=account.pk).exists():
            assert outsider.get(f"/accounts/{account.pk}/ledger/").status_code == 404


def test_ledger_pages_need_a_signed_in_member(tenant_world):
    tenant, _ = tenant_world["shared"]
    client = Client(HTTP_HOST=tenant.domains.get(is_primary=True).domain)
    assert client.get("/accounts/1/ledger/").status_code == 302
    assert client.post("/accounts/1/ledger/move/", {"kind": "deposit", "amount": "1"}).status_code == 302
