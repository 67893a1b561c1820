"""Crash safety of a move at SQL-statement granularity: for every step of the move saga, a crash
right after each of its SQL statements (the first attempt raises there; what autocommitted stays)
still ends in a switched tenant with every row and event — the retry finishes what the crash left.

The steps run through the real saga engine in this process; the fault comes from
tests/support/faults.py through the engine's test-only hook. First each step's statements are
counted in a clean run, then one move per statement number, every step crashing at once.
"""

from __future__ import annotations

import os

import pytest

from core.actors import SystemActor
from sagas.models import SagaState
from sagas.registry import saga_definition
from sagas.services import saga_run_inline
from tenants.models import Tenant, TenantMove
from tenants.moves.sagas import SAGA_TYPE
from tenants.moves.services import tenant_move
from tenants.tests.test_moves import data_of, with_ledger
from tests.support import faults

pytestmark = [pytest.mark.django_db(databases="__all__", transaction=True), pytest.mark.crash]
STEPS = [step.name for step in saga_definition(SAGA_TYPE).steps]
# Every statement of every step with MOVE_CRASH_STRIDE=1 (about 180 moves per direction, ~10 minutes);
# by default every 9th statement number, each step crashing at once (~20 moves per direction).
STRIDE = max(1, int(os.environ.get("MOVE_CRASH_STRIDE", "9")))


@pytest.fixture
def fault_hook(settings, tenancy_templates, allow_tenant_aliases):
    from jobs import services

    settings.JOBS_FAULT_HOOK = "tests.support.faults.inject"
    settings.TENANCY_MOVE_PURGE_GRACE_SECONDS = 3600
    services._fault_hook.cache_clear()
    yield
    faults.STATEMENTS.disarm()
    services._fault_hook.cache_clear()


def _move(tenant: Tenant, to: str, fault: dict) -> tuple[TenantMove, object]:
    move = tenant_move(tenant=tenant, to=to, actor=SystemActor("tests"), fault=fault)
    saga = saga_run_inline(saga_id=move.saga_id, timeout=300)
    move.refresh_from_db()
    return move, saga


@pytest.mark.parametrize(("source", "target"), [("schema", "shared"), ("shared", "dedicated")])
def test_a_move_converges_after_a_crash_after_any_sql_statement_of_any_step(fault_hook, make_tenant, source, target):
    probe = with_ledger(make_tenant(source))
    make_tenant("shared")  # a pool with someone else's low ids, so a move into a pool must look further
    move, saga = _move(probe, target, {"mode": "count_statements", "n_by_step": dict.fromkeys(STEPS, 0)})
    assert saga.state == SagaState.COMPLETED, saga.error
    counts = {step: faults.COUNTED[step] for step in STEPS}
    assert all(counts.values()), counts
    covered: set[tuple[str, int]] = set()
    numbers = range(1, max(counts.values()) + 1, STRIDE)
    for n in numbers:
        tenant = with_ledger(make_tenant(source))
        before = data_of(tenant)
        at = {step: (n - 1) % counts[step] + 1 for step in STEPS}
        move, saga = _move(tenant, target, {"mode": "raise_after_statement", "n_by_step": at})
        assert saga.state == SagaState.COMPLETED, f"crash after statements {at}: {saga.state} {saga.error}"
        assert move.state == TenantMove.State.SWITCHED, at
        tenant.refresh_from_db()
        assert tenant.isolation == target and tenant.status == Tenant.Status.ACTIVE
        assert data_of(tenant) == before, at
        for step, statement in at.items():
            assert saga.steps.get(name=step).job.attempts == 2, f"{step} after statement {statement}: no crash"
            covered.add((step, statement))
    if STRIDE == 1:
        assert covered == {(step, k) for step in STEPS for k in range(1, counts[step] + 1)}
    else:  # sampled: every run crashed every step (asserted above), at points spread over its statements
        assert {s for s, _ in covered} == set(STEPS)
    print(f"\nstatements per step ({source} → {target}): {counts}; {len(covered)} crash points")  # noqa: T201
