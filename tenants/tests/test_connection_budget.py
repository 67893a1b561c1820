"""Each process keeps a bounded number of connections per server for dedicated databases: beyond
TENANCY_SERVER_CONNECTION_BUDGET the least-recently-used alias nobody is using is closed (its backends
go away) and registered again when a tenant context needs it."""

from __future__ import annotations

import pytest
from django.db import connections

from tenants.context import tenant_context
from tenants.databases import registered_dedicated_aliases, unregister_alias
from workspace.models import Member

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture
def three_dedicated(make_tenant, settings):
    settings.TENANCY_SERVER_CONNECTION_BUDGET = settings.TENANCY_DEDICATED_POOL_MAX * 2  # two aliases
    tenants = [make_tenant("dedicated", seed=False) for _ in range(3)]
    for tenant in tenants:
        unregister_alias(tenant.placement.database_alias)
    return tenants


def _use(tenant) -> None:
    with tenant_context(tenant) as alias:
        Member.objects.using(alias).count()


def _registered() -> list[str]:
    return [alias for aliases in registered_dedicated_aliases().values() for alias in aliases]


def _backends(tenant) -> int:
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [tenant.placement.db_name])
        return cursor.fetchone()[0]


def test_the_least_recently_used_dedicated_alias_is_closed_beyond_the_budget(three_dedicated):
    a, b, c = three_dedicated
    for tenant in (a, b, c):
        _use(tenant)
    assert _registered() == [b.placement.database_alias, c.placement.database_alias]
    assert _backends(a) == 0 and _backends(b) >= 1 and _backends(c) >= 1
    _use(a)  # needed again: registered from its placement row, the least recently used (b) goes
    assert _registered() == [c.placement.database_alias, a.placement.database_alias]
    assert _backends(b) == 0


def test_an_alias_in_use_is_never_closed_even_over_budget(three_dedicated):
    a, b, c = three_dedicated
    with tenant_context(a) as alias:
        _use(b)
        _use(c)
        # a is the least recently used but in use: b, the least recently used idle one, went instead.
        assert _registered() == [a.placement.database_alias, c.placement.database_alias]
        assert Member.objects.using(alias).count() >= 0  # still usable inside its context
    _use(b)  # a is released and least recently used: now it goes
    assert _registered() == [c.placement.database_alias, b.placement.database_alias]
    assert _backends(a) == 0
