"""The event-sourced ledger: deposits, withdrawals and transfers are events in the tenant's own log.

Each account is an aggregate `ledger.account` (id = the Account pk) in the
tenant's event log (events.tenantlog, inside its placement). A command locks
the account row, appends its event(s) with optimistic concurrency, and
updates `Account.balance` — the inline projection — in the same transaction,
so the balance never disagrees with the log. "Balance on date X" is the
aggregate's state at X (latest snapshot + replay). Amounts travel as strings
of Decimal, never floats.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from events import aggregates
from events.tenantlog.store import current_tenant_store
from workspace import quotas
from workspace.models import Account

AGGREGATE = "ledger.account"
CENTS = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000")


@aggregates.register(AGGREGATE, snapshot_every=50)
def apply(state: dict[str, Any], event: Any) -> dict[str, Any]:
    data = event.event_data
    balance = Decimal(state.get("balance", "0"))
    if event.event_type == "ledger.opened":
        return {"name": data["name"], "currency": data["currency"], "balance": str(Decimal(data["opening_balance"]))}
    if event.event_type in ("ledger.deposited", "ledger.transfer_received"):
        balance += Decimal(data["amount"])
    elif event.event_type in ("ledger.withdrawn", "ledger.transfer_sent"):
        balance -= Decimal(data["amount"])
    return {**state, "balance": str(balance.quantize(CENTS))}


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value).strip()).quantize(CENTS)
    except (InvalidOperation, ValueError):
        raise ValidationError("The amount must be a number such as 12.50.")
    if amount <= 0:
        raise ValidationError("The amount must be more than zero.")
    if amount > MAX_AMOUNT:
        raise ValidationError("The amount is too large.")
    return amount


def _locked(alias: str, pks: list[int]) -> dict[int, Account]:
    rows = {
        a.pk: a for a in Account.objects.using(alias).select_for_update().filter(pk__in=sorted(set(pks))).order_by("pk")
    }
    missing = set(pks) - set(rows)
    if missing:
        raise ValidationError("No such account in this workspace.")
    return rows


def _ensure_opened(store: Any, account: Account) -> int:
    """Accounts opened before the ledger was event-sourced get an `opened` event with their balance then."""
    version = store.current_version(AGGREGATE, str(account.pk))
    if version == 0:
        store.append(
            AGGREGATE,
            str(account.pk),
            "ledger.opened",
            {"name": account.name, "currency": account.currency, "opening_balance": str(account.balance)},
            occurred_at=account.created_at,
            expected_version=0,
        )
        version = 1
    return version


def _metadata(actor: Any) -> dict[str, Any]:
    return {"member_id": actor.pk} if actor is not None else {}


def ledger_deposit(*, account_id: int, amount: Any, actor: Any = None, note: str = "") -> Account:
    return _single(account_id, _amount(amount), "ledger.deposited", actor, note)


def ledger_withdraw(*, account_id: int, amount: Any, actor: Any = None, note: str = "") -> Account:
    return _single(account_id, _amount(amount), "ledger.withdrawn", actor, note)


def _single(account_id: int, amount: Decimal, event_type: str, actor: Any, note: str) -> Account:
    store = current_tenant_store()
    with store.session() as alias, transaction.atomic(using=alias):
        quotas.check_storage()
        quotas.check_events()
        account = _locked(alias, [account_id])[account_id]
        if event_type == "ledger.withdrawn" and account.balance < amount:
            raise ValidationError(f"Insufficient funds: the balance is {account.balance} {account.currency}.")
        version = _ensure_opened(store, account)
        store.append(
            AGGREGATE,
            str(account.pk),
            event_type,
            {"amount": str(amount), "note": note[:200]},
            metadata=_metadata(actor),
            expected_version=version,
        )
        account.balance += amount if event_type == "ledger.deposited" else -amount
        account.save(using=alias, update_fields=["balance"])
    return account


def ledger_transfer(
    *, from_id: int, to_id: int, amount: Any, actor: Any = None, note: str = ""
) -> tuple[Account, Account]:
    amount = _amount(amount)
    if from_id == to_id:
        raise ValidationError("Choose two different accounts.")
    store = current_tenant_store()
    with store.session() as alias, transaction.atomic(using=alias):
        quotas.check_storage()
        quotas.check_events()
        rows = _locked(alias, [from_id, to_id])
        source, target = rows[from_id], rows[to_id]
        if source.currency != target.currency:
            raise ValidationError("Both accounts must use the same currency.")
        if source.balance < amount:
            raise ValidationError(f"Insufficient funds: the balance is {source.balance} {source.currency}.")
        correlation = uuid.uuid4()
        v_source, v_target = _ensure_opened(store, source), _ensure_opened(store, target)
        sent = store.append(
            AGGREGATE,
            str(source.pk),
            "ledger.transfer_sent",
            {"amount": str(amount), "to_account": target.pk, "note": note[:200]},
            metadata=_metadata(actor),
            correlation_id=correlation,
            expected_version=v_source,
        )
        store.append(
            AGGREGATE,
            str(target.pk),
            "ledger.transfer_received",
            {"amount": str(amount), "from_account": source.pk, "note": note[:200]},
            metadata=_metadata(actor),
            correlation_id=correlation,
            causation_id=sent,
            expected_version=v_target,
        )
        source.balance -= amount
        target.balance += amount
        source.save(using=alias, update_fields=["balance"])
        target.save(using=alias, update_fields=["balance"])
    return source, target


def ledger_history(*, account_id: int) -> list[Any]:
    return list(reversed(current_tenant_store().stream(AGGREGATE, str(account_id))))


def ledger_balance_at(*, account_id: int, at: dt.datetime) -> Decimal | None:
    """The balance at the end of `at`; None when the account did not exist yet."""
    state = current_tenant_store().state_at(AGGREGATE, str(account_id), at)
    return Decimal(state.state["balance"]) if state.version else None
