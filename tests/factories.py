"""factory_boy factories for control-plane rows (tests only).

Rows a service would make through several steps (a provisioned tenant, a saga that ran) come from
the services themselves (tests/support/tenancy.py `provision`, `make_tenant`); these factories are
for the rows a test needs to *stand in* a given state: an operator of a role, a saga stuck on its
second step, a pool placement that exists only on paper.

    saga = SagaFactory(state=SagaState.RUNNING, steps=[("register_tenant", "completed", 1), ("begin", "pending", 1)])
    operator = OperatorFactory(role=Role.OPERATOR)
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone

from core.permissions import Role
from jobs.models import Job
from sagas.models import Saga, SagaState, SagaStep, StepState
from tenants.models import Placement, Tenant

PASSWORD = "a-long-test-password-1"
_pool_numbers = itertools.count(1)


class UserFactory(factory.django.DjangoModelFactory[User]):
    """A user who is not an operator (a tenant member signing in at the dashboard, say)."""

    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @classmethod
    def _after_postgeneration(cls, instance: Any, create: bool, results: Any = None) -> None:
        if create:
            instance.save()


class OperatorFactory(UserFactory):
    """A staff user holding one role: `OperatorFactory(role=Role.ADMIN)`; `role=None`: staff with no role."""

    is_staff = True
    username = factory.Sequence(lambda n: f"operator{n}")

    @factory.post_generation
    def role(obj: User, create: bool, extracted: Role | None, **kwargs: Any) -> None:  # noqa: N805 - the created user
        if create and extracted is not None:
            # get_or_create: a transactional test's flush empties the groups migration saas_admin/0001 made.
            obj.groups.add(Group.objects.get_or_create(name=extracted.group_name)[0])


class JobFactory(factory.django.DjangoModelFactory[Job]):
    class Meta:
        model = Job

    kind = "saga.step"
    state = Job.State.PENDING
    max_attempts = 3
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


class SagaFactory(factory.django.DjangoModelFactory[Saga]):
    """A saga in a given state. `steps`: (name, state, attempts) per step, in order; a step with
    attempts gets its job (finished for a completed step, pending otherwise)."""

    class Meta:
        model = Saga
        skip_postgeneration_save = True

    saga_type = "provision.shared"
    state = SagaState.RUNNING
    tenant_label = "acme"
    input = factory.LazyAttribute(lambda s: {"slug": s.tenant_label})
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def steps(obj: Saga, create: bool, extracted: Any, **kwargs: Any) -> None:  # noqa: N805 - the created saga
        if not create:
            return
        for index, (name, state, attempts) in enumerate(extracted or [("register_tenant", StepState.PENDING, 0)]):
            job: Job | None = None
            if attempts:
                job = JobFactory.create(
                    kind="saga.step",
                    group_type="saga",
                    group_id=str(obj.id),
                    state=Job.State.SUCCEEDED if state == StepState.COMPLETED else Job.State.PENDING,
                    attempts=attempts,
                    payload={"saga_id": str(obj.id), "step": name},
                )
            step = SagaStep.objects.create(saga=obj, index=index, name=name, state=state, job=job)
            if job is not None:
                job.payload["step_id"] = step.pk
                job.save(update_fields=["payload"])


class TenantFactory(factory.django.DjangoModelFactory[Tenant]):
    """A tenant row only (no placement, schema or database): for screens and filters."""

    class Meta:
        model = Tenant

    id = factory.LazyFunction(uuid.uuid4)
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda t: t.slug.replace("-", " ").title())
    isolation = Tenant.Isolation.SHARED
    status = Tenant.Status.ACTIVE


class PoolPlacementFactory(factory.django.DjangoModelFactory[Placement]):
    """A pool placement row whose schema does not exist (status reads report it as missing)."""

    class Meta:
        model = Placement

    kind = Placement.Kind.POOL
    schema_name = factory.LazyFunction(lambda: f"nowhere_{next(_pool_numbers)}")
    capacity = 10
