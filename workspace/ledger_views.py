"""Member pages of the event-sourced ledger: history, balance on a date, deposit/withdraw/transfer."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.http import TenantRequest
from core.instants import parse_instant
from workspace import ledger
from workspace.auth import current_member, member_required
from workspace.models import Account


def _account(pk: int) -> Account:
    account = Account.objects.filter(pk=pk).first()  # RLS: only this tenant's accounts exist here
    if account is None:
        raise Http404("No such account in this workspace.")
    return account


@member_required
def account_ledger(request: TenantRequest, pk: int) -> HttpResponse:
    account = _account(pk)
    on_date, balance_then, error = request.GET.get("date", ""), None, ""
    asked = bool(on_date)
    if on_date:
        moment = parse_instant(on_date)
        if moment is None:
            error = "Please give a date such as 2026-03-31."
        else:
            balance_then = ledger.ledger_balance_at(account_id=account.pk, at=moment)
    others = Account.objects.exclude(pk=account.pk).filter(currency=account.currency)
    return render(
        request,
        "workspace/ledger.html",
        {
            "account": account,
            "history": ledger.ledger_history(account_id=account.pk),
            "on_date": on_date,
            "asked": asked and not error,
            "balance_then": balance_then,
            "error": error,
            "others": others,
            "section": "accounts",
        },
    )


@require_POST
@member_required
def account_move(request: TenantRequest, pk: int) -> HttpResponse:
    account = _account(pk)
    kind, amount, note = request.POST.get("kind"), request.POST.get("amount", ""), request.POST.get("note", "")
    member = current_member(request)
    try:
        if kind == "deposit":
            ledger.ledger_deposit(account_id=account.pk, amount=amount, actor=member, note=note)
        elif kind == "withdraw":
            ledger.ledger_withdraw(account_id=account.pk, amount=amount, actor=member, note=note)
        elif kind == "transfer":
            to = request.POST.get("to", "")
            if not to.isdigit():
                raise ValidationError("Choose the account to transfer to.")
            _account(int(to))
            ledger.ledger_transfer(from_id=account.pk, to_id=int(to), amount=amount, actor=member, note=note)
        else:
            raise ValidationError("Choose deposit, withdraw or transfer.")
        messages.success(request, "Recorded.")
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return redirect("workspace:account_ledger", pk=account.pk)
