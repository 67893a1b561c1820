"""Moves end to end through a real Celery worker and broker: every step of the move saga once with
the worker process killed after the step's side effects and before they were recorded — the worker
is restarted, the sweeper resumes the step, and the move still ends switched with every row."""

from __future__ import annotations

import pytest

from core.actors import SystemActor
from sagas.models import SagaState
from sagas.registry import saga_definition
from tenants.context import tenant_context
from tenants.models import Tenant, TenantMove
from tenants.moves.sagas import SAGA_TYPE
from tenants.moves.services import tenant_move
from tenants.provisioning.services import tenant_provision
from tenants.tests.test_provisioning_worker import _drop_leftovers
from tests.support.sagas import CeleryHarness, wait_for_sagas
from tests.support.tenancy import seed_tenant
from workspace.models import Account, Member

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=["default", "owner"])]
ACTOR = SystemActor("tests")


@pytest.fixture(scope="module")
def celery_harness(django_db_setup, django_db_blocker):
    harness = CeleryHarness().start()
    yield harness
    harness.stop()
    with django_db_blocker.unblock():
        _drop_leftovers()


def _tenants(harness, isolation: str, count: int, prefix: str) -> list[Tenant]:
    sagas = [tenant_provision(slug=f"{prefix}{i}", isolation=isolation, actor=ACTOR) for i in range(count)]
    for saga in wait_for_sagas(harness, [s.id for s in sagas], timeout=240):
        assert saga.state == SagaState.COMPLETED, saga.error
    tenants = [Tenant.objects.select_related("placement").get(pk=str(s.tenant_id)) for s in sagas]
    for tenant in tenants:
        seed_tenant(tenant)
    return tenants


def test_every_move_step_survives_a_killed_worker(celery_harness, allow_tenant_aliases):
    steps = [s.name for s in saga_definition(SAGA_TYPE).steps]
    tenants = _tenants(celery_harness, "shared", len(steps), "mvk")
    moves = {}
    for tenant, step in zip(tenants, steps, strict=True):
        move = tenant_move(tenant=tenant, to="schema", actor=ACTOR, fault={"step": step, "mode": "kill"})
        moves[move.saga_id] = (step, move.pk, tenant.pk)
    restarts_before = celery_harness.restarts
    for saga in wait_for_sagas(celery_harness, list(moves), timeout=300):
        step, move_id, tenant_id = moves[saga.id]
        assert saga.state == SagaState.COMPLETED, (step, saga.error)
        assert saga.steps.get(name=step).attempts == 2, step  # the killed attempt, then the resumed one
        assert TenantMove.objects.get(pk=move_id).state == TenantMove.State.SWITCHED
        tenant = Tenant.objects.select_related("placement").get(pk=tenant_id)
        assert tenant.isolation == "schema" and tenant.status == Tenant.Status.ACTIVE
        with tenant_context(tenant) as alias:
            assert Member.objects.using(alias).count() == 3 and Account.objects.using(alias).count() == 2
    assert celery_harness.restarts - restarts_before >= 1
