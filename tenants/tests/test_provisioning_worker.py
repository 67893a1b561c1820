"""Provisioning sagas end to end through a real Celery worker and broker, with fault injection:
at every step of each isolation level's saga, once the worker is killed (after the step's
side effects, before they are recorded) and once the step raises on every attempt. Every run
must converge to an active tenant or a fully compensated one, with nothing orphaned."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connections

from core import dbroles
from core.actors import SystemActor
from sagas.models import Saga, SagaState, StepState
from sagas.registry import saga_definition
from tenants.models import Domain, Placement, Tenant
from tenants.provisioning.sagas import SAGA_TYPES
from tenants.provisioning.services import tenant_provision
from tests.support.sagas import CeleryHarness, wait_for_sagas

TESTS = SystemActor("tests")


def provisioning_start(**kwargs):
    return tenant_provision(actor=TESTS, **kwargs)


pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=["default", "owner"])]


@pytest.fixture(scope="module")
def celery_harness(django_db_setup, django_db_blocker):
    harness = CeleryHarness().start()
    yield harness
    harness.stop()
    with django_db_blocker.unblock():
        _drop_leftovers()


def _drop_leftovers() -> None:
    """Tenants that ended active keep their schema or database, and the template database stays:
    drop what this module made."""
    name = settings.DATABASES["owner"]["NAME"]
    with dbroles.admin_connect() as conn:
        for (db,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [name.replace("_", r"\_") + r"\_t\_%"]
        ).fetchall():
            dbroles.drop_database(db)
    dbroles.drop_database(f"{name}_tenant_tpl")
    with dbroles.admin_connect(name) as conn:
        for (schema,) in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%' OR nspname LIKE 'pool\\_%'"
        ).fetchall():
            from psycopg import sql

            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _schema_exists(schema: str) -> bool:
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
        return cursor.fetchone() is not None


def _assert_active(saga):
    tenant = Tenant.objects.select_related("placement").get(pk=saga.tenant_id)
    assert tenant.status == Tenant.Status.ACTIVE, saga.error
    assert Domain.objects.filter(tenant=tenant, is_primary=True).exists()
    assert tenant.placement is not None
    if tenant.isolation == "schema":
        assert _schema_exists(tenant.placement.schema_name)
    if tenant.isolation == "dedicated":
        assert dbroles.database_exists(tenant.placement.db_name)


def _assert_nothing_left(saga):
    slug = saga.input["slug"]
    assert not Tenant.objects.filter(pk=saga.tenant_id).exists()
    assert not Tenant.objects.filter(slug=slug).exists()
    assert not Domain.objects.filter(domain__startswith=f"{slug}.").exists()
    assert not _schema_exists("t_" + slug.replace("-", "_"))
    db = f"{settings.DATABASES['owner']['NAME']}_t_{slug.replace('-', '_')}"
    assert not dbroles.database_exists(db)
    assert not Placement.objects.filter(schema_name="t_" + slug.replace("-", "_")).exists()
    assert not Placement.objects.filter(db_name=db).exists()
    assert all(s.state in (StepState.COMPENSATED, StepState.PENDING) for s in saga.steps.all())


def test_each_isolation_level_is_provisioned_end_to_end_through_the_worker(celery_harness):
    sagas = [
        provisioning_start(slug=f"e2e-{iso}", isolation=iso, owner_email=f"owner@{iso}.example")
        for iso in ("shared", "schema", "dedicated")
    ]
    for saga in wait_for_sagas(celery_harness, [s.id for s in sagas]):
        assert saga.state == SagaState.COMPLETED, saga.error
        _assert_active(saga)


def test_a_shared_pool_that_is_full_gets_a_new_pool(celery_harness, settings):
    first = provisioning_start(slug="pool-first", isolation="shared")
    wait_for_sagas(celery_harness, [first.id])
    pool = Tenant.objects.get(slug="pool-first").placement
    Placement.objects.filter(pk=pool.pk).update(capacity=pool.tenants.count())
    second = provisioning_start(slug="pool-second", isolation="shared")
    (done,) = wait_for_sagas(celery_harness, [second.id])
    assert done.state == SagaState.COMPLETED, done.error
    new_pool = Tenant.objects.get(slug="pool-second").placement
    assert new_pool.pk != pool.pk and new_pool.kind == "pool"


@pytest.mark.parametrize("isolation", ["shared", "schema", "dedicated"])
def test_every_step_survives_a_killed_worker_or_converges_to_a_full_compensation(celery_harness, isolation):
    steps = [s.name for s in saga_definition(SAGA_TYPES[isolation]).steps]
    runs = {}
    for i, step in enumerate(steps):
        for mode in ("kill", "raise"):
            slug = f"f{isolation[:2]}-{mode[0]}{i}"
            saga = provisioning_start(
                slug=slug, isolation=isolation, owner_email="owner@fault.example", fault={"step": step, "mode": mode}
            )
            runs[saga.id] = (step, mode)
    restarts_before = celery_harness.restarts
    settled = wait_for_sagas(celery_harness, runs, timeout=240)
    for saga in settled:
        step, mode = runs[saga.id]
        if mode == "kill":
            assert saga.state == SagaState.COMPLETED, (step, saga.error)
            _assert_active(saga)
            assert saga.steps.get(name=step).attempts == 2  # the killed attempt, then the resumed one
        else:
            assert saga.state == SagaState.COMPENSATED, (step, saga.state, saga.error)
            assert f"Step “{step}” failed after 3 attempts: RuntimeError: Injected fault" in saga.error
            _assert_nothing_left(saga)
    assert celery_harness.restarts - restarts_before >= len(steps)  # the worker really died each time


def test_the_provision_tenant_command_runs_the_saga_and_prints_the_uuid_last(celery_harness):
    from io import StringIO

    from django.core.management import call_command

    out, err = StringIO(), StringIO()
    call_command("provision_tenant", "cmd-schema", "--isolation", "schema", stdout=out, stderr=err)
    tenant_id = out.getvalue().strip().splitlines()[-1]
    tenant = Tenant.objects.get(pk=tenant_id)
    assert tenant.status == Tenant.Status.ACTIVE and tenant.isolation == "schema"
    assert Saga.objects.get(tenant_id=tenant_id).state == SagaState.COMPLETED
    assert "create_schema done" in err.getvalue()


def test_the_provision_tenant_command_refuses_a_reserved_slug_in_one_line(celery_harness):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="^The slug “admin” is reserved; please choose another.$"):
        call_command("provision_tenant", "admin", "--isolation", "shared")
    assert not Saga.objects.filter(tenant_label="admin").exists()


def test_a_signup_ends_signed_in_on_the_new_workspace(celery_harness, client, settings):
    import re
    import time

    from django.core import mail
    from django.core.cache import cache

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()
    form = {
        "name": "Signup Co",
        "slug": "signup-co",
        "email": "founder@signup.example",
        "password": "correct horse battery",
        "plan": "free",
        "request_key": "0b9d7a52-3c1e-4b7f-9a0e-6f1d2c3b4a59",
    }
    assert client.post("/signup/", form).status_code == 302
    link = re.search(r"http://testserver(/signup/verify/\S+/)", mail.outbox[-1].body).group(1)
    progress = client.get(link)["Location"]
    deadline = time.monotonic() + 60
    while True:
        celery_harness.ensure_worker()  # an earlier fault-injection case may have left it dead
        response = client.get(progress, HTTP_HX_REQUEST="true")
        if response.status_code == 204 or time.monotonic() > deadline:
            break
        assert b"could not create" not in response.content
        time.sleep(0.2)
    assert response.status_code == 204, "the signup saga did not finish:\n" + celery_harness.logs()
    welcome = response["HX-Redirect"]
    host, path = re.match(r"http://([^/]+)(/.*)", welcome).groups()
    assert host == "signup-co.localhost:8000"
    signed_in = client.get(path, HTTP_HOST=host)
    assert signed_in.status_code == 302 and signed_in["Location"].endswith("/members/")
    members = client.get("/members/", HTTP_HOST=host)
    assert members.status_code == 200 and b"founder@signup.example" in members.content
    assert client.get(path, HTTP_HOST=host)["Location"].endswith("/login/")  # the link worked once
    client.post("/logout/", HTTP_HOST=host)
    login = client.post(
        "/login/", {"email": "founder@signup.example", "password": "correct horse battery"}, HTTP_HOST=host
    )
    assert login.status_code == 302  # the password chosen at signup is the workspace password
    assert Tenant.objects.filter(slug="signup-co").count() == 1
