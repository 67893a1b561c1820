"""Reads in a tenant's workspace; the router sends them to the tenant's alias, RLS scopes the rows."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from workspace.models import Account, Member


def member_list(*, search: str = "") -> QuerySet[Member]:
    qs = Member.objects.all()
    if search:
        qs = qs.filter(Q(name__icontains=search[:100]) | Q(email__icontains=search[:100]))
    return qs.order_by("name", "id")


def account_list(*, search: str = "") -> QuerySet[Account]:
    qs = Account.objects.all()
    if search:
        qs = qs.filter(name__icontains=search[:100])
    return qs.order_by("name", "id")
