"""Crash safety of provisioning at SQL-statement granularity: for every step of every isolation
level, a crash right after each of its SQL statements (the first attempt raises there; what
autocommitted stays) still ends in an active tenant — the retry finishes what the crash left.

The steps run through the real saga engine in this process (what a worker does); the fault comes
from tests/support/faults.py through the engine's test-only hook. First each step's statements are
counted in a clean run, then one saga per (step, statement).
"""

from __future__ import annotations

import pytest

from core.actors import SystemActor
from sagas.models import SagaState
from sagas.registry import saga_definition
from sagas.services import saga_run_inline
from tests.support import faults
from tests.support.tenancy import ISOLATIONS, teardown_tenant, unique_slug

pytestmark = [pytest.mark.django_db(databases="__all__", transaction=True), pytest.mark.crash]


@pytest.fixture
def fault_hook(settings, tenancy_templates, allow_tenant_aliases):
    from jobs import services

    settings.JOBS_FAULT_HOOK = "tests.support.faults.inject"
    services._fault_hook.cache_clear()
    yield
    faults.STATEMENTS.disarm()
    services._fault_hook.cache_clear()


def _provision(isolation: str, fault: dict):
    from tenants.models import Tenant
    from tenants.provisioning.services import tenant_provision

    slug = unique_slug(isolation[:3] + "x")
    saga = tenant_provision(
        slug=slug, isolation=isolation, owner_email=f"owner@{slug}.test", actor=SystemActor("tests"), fault=fault
    )
    saga = saga_run_inline(saga_id=saga.id, timeout=120)
    tenant = Tenant.objects.filter(pk=str(saga.tenant_id)).first()
    return saga, tenant


def _steps(isolation: str) -> list[str]:
    from tenants.provisioning.sagas import SAGA_TYPES

    return [step.name for step in saga_definition(SAGA_TYPES[isolation]).steps]


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_provisioning_converges_after_a_crash_after_any_sql_statement_of_any_step(isolation, fault_hook):
    # The steps every level shares are crashed with the shared level; the others only add their own.
    steps = _steps(isolation) if isolation == "shared" else [s for s in _steps(isolation) if s not in _steps("shared")]
    # A first tenant opens the pool, so every run below takes the same path (an existing pool with room).
    warm, _tenant = _provision(isolation, {})
    saga, _tenant = _provision(isolation, {"mode": "count_statements", "n_by_step": dict.fromkeys(steps, 0)})
    teardown_tenant(warm.tenant_id)
    assert saga.state == SagaState.COMPLETED, saga.error
    counts = {step: faults.COUNTED[step] for step in steps}
    teardown_tenant(saga.tenant_id)
    assert all(counts.values()), counts
    # Every step of the saga crashes at once, each after its own statement: run n crashes step s after
    # statement ((n - 1) mod count(s)) + 1, so max(count) runs cover every (step, statement) pair.
    covered: set[tuple[str, int]] = set()
    for n in range(1, max(counts.values()) + 1):
        at = {step: (n - 1) % counts[step] + 1 for step in steps}
        saga, tenant = _provision(isolation, {"mode": "raise_after_statement", "n_by_step": at})
        assert saga.state == SagaState.COMPLETED, f"crash after statements {at}: {saga.state} {saga.error}"
        assert tenant is not None and tenant.status == "active", at
        for step, statement in at.items():
            attempts = saga.steps.get(name=step).job.attempts
            assert attempts == 2, f"{step} after statement {statement}: the injected crash did not happen ({attempts})"
            covered.add((step, statement))
        teardown_tenant(saga.tenant_id)
    assert covered == {(step, k) for step in steps for k in range(1, counts[step] + 1)}
