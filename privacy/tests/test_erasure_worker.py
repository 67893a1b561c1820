"""The erasure saga through a real Celery worker that is killed (os._exit) at every step, after the
step's side effects and before they are recorded: the sweeper hands the step to the restarted
worker and every erasure still completes with a clean scan. One tenant per isolation level, one
person per step, all sagas in flight at once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core.actors import SystemActor
from core.personal_data import subject_ref
from privacy.erasure import ERASURE_STEPS
from privacy.models import ErasureProof, RequestKind, RequestStatus, SubjectRequest
from privacy.scan import plaintext_scan
from privacy.services import ERASURE_SAGA
from sagas.models import SagaState
from sagas.services import saga_start
from tenants import crypto
from tenants.context import tenant_context
from tenants.logs import tenant_log_store
from tests.support.sagas import CeleryHarness, wait_for_sagas
from workspace import services as workspace

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases="__all__")]


@pytest.fixture(scope="module")
def celery_harness(django_db_setup, django_db_blocker):
    harness = CeleryHarness().start()
    yield harness
    harness.stop()


@pytest.mark.parametrize("isolation", ["shared", "schema", "dedicated"])
def test_a_worker_killed_at_every_step_of_the_erasure_still_erases(celery_harness, make_tenant, isolation):
    tenant = make_tenant(isolation)
    people = {}
    with tenant_context(tenant):
        for i, step in enumerate(ERASURE_STEPS):
            email, name = f"k{i}.{tenant.slug}@kill.test", f"Killed At {step.name} {tenant.slug}"
            workspace.member_create(name=name, email=email, password="pw-kill-123456")
            people[step.name] = (email, name)
    sagas = {}
    for step, (email, _name) in people.items():
        opened = SubjectRequest.objects.create(
            kind=RequestKind.ERASURE,
            tenant=tenant,
            subject_ref=subject_ref(tenant.pk, email),
            email_enc=crypto.encrypt_json({"email": email}),
            due_at=timezone.now() + dt.timedelta(days=30),
            status=RequestStatus.RUNNING,
        )
        saga = saga_start(
            saga_type=ERASURE_SAGA,
            input={"request_id": str(opened.pk), "_fault": {"step": step, "mode": "kill"}},
            tenant_id=tenant.pk,
            actor=SystemActor("tests"),
        )
        sagas[saga.id] = step
    restarts_before = celery_harness.restarts
    settled = wait_for_sagas(celery_harness, sagas, timeout=300)
    for saga in settled:
        step = sagas[saga.id]
        assert saga.state == SagaState.COMPLETED, (step, saga.error)
        assert saga.steps.get(name=step).attempts == 2  # the killed attempt, then the resumed one
        email, name = people[step]
        assert plaintext_scan(tenant, [email, name]).hits == [], step
        assert ErasureProof.objects.filter(request_id=saga.input["request_id"]).count() == 1
    assert celery_harness.restarts - restarts_before >= len(ERASURE_STEPS)  # the worker really died
    assert tenant_log_store(tenant).verify_chain().ok
