"""Shared placement: a kept tenant count per placement and one indexed, row-locked pick of a pool.

The count is the trigger's (migration 0004_pool_tenant_count), checked against a fresh COUNT(*) after
every kind of change; the pick is checked for order, for skipping a pool another placement holds,
for re-checking room after waiting, and for opening a pool only when every pool is full.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections, transaction

from tenants.models import Placement, Tenant
from tenants.provisioning.steps import place_in_pool
from tests.factories import PoolPlacementFactory, TenantFactory


def _counts() -> dict[int, tuple[int, int]]:
    """placement id -> (kept count, real count)."""
    return {
        p.pk: (Placement.objects.get(pk=p.pk).tenant_count, Tenant.objects.filter(placement=p).count())
        for p in Placement.objects.all()
    }


@pytest.fixture
def only_our_pools():
    """Pools left by other tests (tenant_world's, committed) are closed for the length of this test."""
    Placement.objects.filter(kind=Placement.Kind.POOL).update(capacity=0)


def _pending_tenant() -> Tenant:
    return TenantFactory.create(status=Tenant.Status.PROVISIONING, placement=None)


@pytest.mark.django_db
def test_the_kept_count_follows_every_change_of_a_tenants_placement():
    a, b = PoolPlacementFactory(), PoolPlacementFactory()
    t1, t2 = TenantFactory(placement=a), TenantFactory(placement=a)
    TenantFactory(placement=None)
    assert Placement.objects.get(pk=a.pk).tenant_count == 2
    t1.placement = b
    t1.save()  # a move
    Tenant.objects.filter(pk=t2.pk).update(placement=None)  # a compensation
    Tenant.objects.filter(pk=t2.pk).update(name="renamed")  # no placement change: no count change
    TenantFactory(placement=b)
    Tenant.objects.filter(pk=t1.pk).delete()
    counts = _counts()
    assert counts[a.pk] == (0, 0) and counts[b.pk] == (1, 1)
    assert all(kept == real for kept, real in counts.values())


@pytest.mark.django_db
def test_it_fills_the_first_pool_with_room_and_skips_full_ones(only_our_pools):
    full = PoolPlacementFactory(capacity=1)
    TenantFactory(placement=full)
    roomy = PoolPlacementFactory(capacity=2)
    later = PoolPlacementFactory(capacity=2)
    first, second, third = _pending_tenant(), _pending_tenant(), _pending_tenant()
    for tenant in (first, second, third):
        place_in_pool(tenant.pk)
    placed = {t.pk: Tenant.objects.get(pk=t.pk).placement_id for t in (first, second, third)}
    assert placed == {first.pk: roomy.pk, second.pk: roomy.pk, third.pk: later.pk}
    assert (
        _counts()[roomy.pk] == (2, 2)
        and Placement.objects.filter(kind=Placement.Kind.POOL, capacity__gt=0).count() == 3
    )


@pytest.mark.django_db
def test_placing_twice_changes_nothing(only_our_pools):
    pool = PoolPlacementFactory(capacity=5)
    tenant = _pending_tenant()
    place_in_pool(tenant.pk)
    place_in_pool(tenant.pk)
    assert _counts()[pool.pk] == (1, 1)


def _place_in_thread(tenant_id) -> int | None:
    try:
        place_in_pool(tenant_id)
        return Tenant.objects.get(pk=tenant_id).placement_id
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_a_pool_held_by_another_placement_is_skipped_without_waiting(only_our_pools):
    held, free = PoolPlacementFactory(capacity=5), PoolPlacementFactory(capacity=5)
    tenant = _pending_tenant()
    with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
        cursor.execute("SELECT 1 FROM tenants_placement WHERE id = %s FOR UPDATE", [held.pk])
        with ThreadPoolExecutor(1) as pool:
            placed = pool.submit(_place_in_thread, tenant.pk).result(timeout=10)
    assert placed == free.pk


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_after_waiting_for_a_pool_that_filled_meanwhile_it_takes_the_next_one(only_our_pools):
    filling, after = PoolPlacementFactory(capacity=1), PoolPlacementFactory(capacity=1)
    rival, tenant = _pending_tenant(), _pending_tenant()
    owner = connections["owner"]
    with ThreadPoolExecutor(1) as pool:
        with transaction.atomic(using="owner"), owner.cursor() as cursor:
            # Another placement holds every pool with room, and fills the first one.
            cursor.execute("SELECT 1 FROM tenants_placement WHERE id IN (%s, %s) FOR UPDATE", [filling.pk, after.pk])
            cursor.execute("UPDATE tenants_tenant SET placement_id = %s WHERE id = %s", [filling.pk, rival.pk])
            future = pool.submit(_place_in_thread, tenant.pk)
            time.sleep(0.5)
            assert not future.done()  # it waits rather than opening a pool
        placed = future.result(timeout=10)
    assert placed == after.pk
    assert all(kept == real for kept, real in _counts().values())


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_concurrent_placements_never_overfill_a_pool(only_our_pools):
    pools = [PoolPlacementFactory(capacity=3) for _ in range(3)]
    tenants = [_pending_tenant() for _ in range(9)]
    start = threading.Barrier(4)

    def place(tenant_ids: list) -> None:
        start.wait()
        try:
            for tenant_id in tenant_ids:
                place_in_pool(tenant_id)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(place, [[t.pk for t in tenants[i::4]] for i in range(4)]))
    counts = _counts()
    assert [counts[p.pk] for p in pools] == [(3, 3)] * 3
    assert Placement.objects.filter(kind=Placement.Kind.POOL, capacity__gt=0).count() == 3  # none opened
