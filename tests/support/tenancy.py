"""Tenancy fixtures: real tenants of every isolation level on the test database.

A pytest plugin of the root conftest.py, so every test can ask for these fixtures by name;
helpers (`unique_slug`, `seed_tenant`, `ISOLATIONS`, `MEMBER_PASSWORD`) are imported from here.

- `tenancy_templates` (session): template schema + template database built once,
  outside any test transaction; at session end every database named
  `<test db>_*` (templates, dedicated tenants) is dropped.
- `tenant_world` (module): two tenants of each isolation level — both shared
  ones in the same pool — each with members and accounts, as a dict
  {"shared": (a, b), "schema": (a, b), "dedicated": (a, b)}. Committed for real;
  removed at module end. Use it from tests marked
  `@pytest.mark.django_db(databases="__all__")` (non-transactional: each test's
  writes are rolled back on every alias, dedicated ones included).
- `make_tenant(isolation, **kw)` (function): provision one more tenant; torn
  down after the test, even in transactional tests. Its dedicated aliases are
  usable in the test (see `allow_tenant_aliases`).
- `MEMBER_PASSWORD`: the password of every seeded member.
"""

from __future__ import annotations

# Fixtures and helpers import models inside functions: pytest loads this plugin before Django is set up.
import itertools
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

MEMBER_PASSWORD = "seeded-member-password-1"
TENANT_ALIAS_PREFIXES = (
    "tdb_",
    "tenant_",
    "probe_",
    "data",
    "srv_",
)  # probe_: aliases tests make up; data: tenant hosts
ISOLATIONS = ("shared", "schema", "dedicated")
_counter = itertools.count(1)


def unique_slug(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}{next(_counter)}"


def seed_tenant(tenant: Any, *, members: int = 3, accounts: int = 2) -> None:
    from tenants.context import tenant_context
    from workspace import services

    with tenant_context(tenant):
        services.member_create(name=f"Owner of {tenant.slug}", email=f"owner@{tenant.slug}.test",
                               password=MEMBER_PASSWORD, is_admin=True)  # fmt: skip
        for i in range(members - 1):
            services.member_create(name=f"{tenant.slug} member {i}", email=f"m{i}@{tenant.slug}.test",
                                   password=MEMBER_PASSWORD)  # fmt: skip
        for i in range(accounts):
            services.account_open(name=f"{tenant.slug} account {i}", currency="EUR", balance=f"{100 * (i + 1)}.00")


def _drop_test_databases() -> None:
    from core import dbroles
    from tenants.databases import unregister_alias

    for alias in list(connections.settings):
        if alias.startswith(("tdb_", "tenant_template")) and not alias.endswith("__owner"):
            unregister_alias(alias)
    prefix = settings.DATABASES["owner"]["NAME"] + "_"
    with dbroles.admin_connect() as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [prefix])]
    for name in names:
        dbroles.drop_database(name)
    # Each dedicated database had its own login roles (comment "dedicated:<database>").
    dbroles.drop_login_roles(*dbroles.roles_commented(f"dedicated:{prefix}"))


# Tenants made inside a test transaction: their schema/database DDL would wait forever on the
# locks that very transaction holds, so they are removed at the end of the session instead.
_DEFERRED: list[tuple[Any, str, str, str]] = []


@pytest.fixture(scope="session")
def tenancy_templates(django_db_setup, django_db_blocker) -> Iterator[None]:
    from tenants import placements

    with django_db_blocker.unblock():
        placements.templates_rebuild()
    yield
    with django_db_blocker.unblock():
        for conn in connections.all():
            conn.close()
        _teardown(_DEFERRED)
        _DEFERRED.clear()
        _drop_test_databases()


def provision(isolation: str, slug: str, **kw: Any) -> Any:
    """Provision a tenant through the real provisioning saga, its jobs run in this process by the
    engine (what a worker does); the active tenant, or ProvisioningError when it was rolled back."""
    from core.actors import SystemActor
    from sagas.models import SagaState
    from sagas.services import saga_run_inline
    from tenants.models import Tenant
    from tenants.provisioning.services import tenant_provision
    from tenants.provisioning.steps import ProvisioningError

    saga = tenant_provision(
        slug=slug, name=kw.pop("name", slug.title()), isolation=isolation, actor=SystemActor("tests"), **kw
    )
    saga = saga_run_inline(saga_id=saga.id, timeout=120)
    if saga.state != SagaState.COMPLETED:
        reason = saga.error.splitlines()[0] if saga.error else saga.state
        raise ProvisioningError(f"Provisioning failed and was rolled back: {reason}")
    return Tenant.objects.select_related("placement").get(pk=str(saga.tenant_id))


def teardown_tenant(tenant_id: Any) -> None:
    """Remove a tenant completely (tests only, until offboarding exists): every compensation of its
    provisioning steps, newest first, then the row. Safe twice and on half-provisioned tenants."""
    from jobs.models import Job
    from sagas.models import Saga
    from tenants import selectors
    from tenants.models import Tenant
    from tenants.provisioning.steps import PROVISIONING_STEPS

    # The tenant's provisioning sagas and their jobs go too, so later tests start from a clean monitor.
    sagas = [str(pk) for pk in Saga.objects.filter(tenant_id=tenant_id).values_list("pk", flat=True)]
    Saga.objects.filter(pk__in=sagas).delete()
    Job.objects.filter(group_type="saga", group_id__in=sagas).delete()
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return
    for step in reversed(PROVISIONING_STEPS[tenant.isolation]):
        step.compensate(tenant.pk)
    Tenant.objects.filter(pk=tenant.pk).delete()
    selectors.host_cache_clear()


def _location(tenant: Any) -> tuple[Any, str, str, str]:
    p = tenant.placement
    return (tenant.pk, p.kind, p.schema_name, p.db_name) if p else (tenant.pk, "", "", "")


def _teardown(created: list[tuple[Any, str, str, str]]) -> None:
    """Full teardown through the services; if the rows are already gone (a test transaction rolled
    them back, or a transactional test flushed them), drop the schema/database directly."""
    from tenants import placements
    from tenants.databases import unregister_alias

    for tenant_id, kind, schema, db_name in created:
        teardown_tenant(tenant_id)
        if kind == "schema":
            placements.drop_schema(schema)
        elif kind == "database":
            for alias in [a for a in connections.settings if connections.settings[a].get("NAME") == db_name]:
                unregister_alias(alias.removesuffix("__owner"))
            placements.drop_database(db_name)


def remove_tenants(tenants: list[Any]) -> None:
    """Remove tenants a test made some other way than `make_tenant` (e.g. through a browser)."""
    _teardown([_location(t) for t in tenants])


@pytest.fixture(scope="module")
def tenant_world(tenancy_templates, django_db_blocker) -> Iterator[dict[str, tuple[Any, Any]]]:
    with django_db_blocker.unblock():
        world: dict[str, tuple[Any, Any]] = {}
        for isolation in ISOLATIONS:
            pair = tuple(provision(isolation, unique_slug(isolation[:3] + l)) for l in "ab")  # noqa: E741
            for tenant in pair:
                seed_tenant(tenant)
            world[isolation] = (pair[0], pair[1])
        assert world["shared"][0].placement_id == world["shared"][1].placement_id, "shared tenants share a pool"
    yield world
    with django_db_blocker.unblock():
        for conn in connections.all():
            conn.close()
        _teardown([_location(t) for pair in world.values() for t in pair])


@pytest.fixture
def allow_tenant_aliases(monkeypatch, django_db_blocker) -> None:
    """Let a test use dedicated-database aliases registered *during* the test.

    Django's test cases refuse connections to aliases that were not in `databases` when the
    test started (`"__all__"` is resolved then); tenant aliases appear at runtime.
    """
    guarded = BaseDatabaseWrapper.ensure_connection
    real = django_db_blocker._real_ensure_connection or guarded  # pytest-django keeps the unpatched method

    def ensure_connection(self, *args, **kwargs):
        if self.alias.startswith(TENANT_ALIAS_PREFIXES):
            return real(self, *args, **kwargs)
        return guarded(self, *args, **kwargs)

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", ensure_connection)


@pytest.fixture
def make_tenant(tenancy_templates, django_db_blocker, allow_tenant_aliases) -> Iterator[Callable[..., Any]]:
    created: list[tuple[Any, str, str, str]] = []

    def make(isolation: str, *, seed: bool = True, slug: str | None = None, **kw: Any) -> Any:
        tenant = provision(isolation, slug or unique_slug(isolation[:3]), **kw)
        created.append(_location(tenant))
        if seed:
            seed_tenant(tenant)
        return tenant

    yield make
    if any(connections[alias].in_atomic_block for alias in ("default", "owner")):
        _DEFERRED.extend(created)  # a non-transactional test: its rows roll back, DDL waits for the session end
        return
    with django_db_blocker.unblock():
        _teardown(created)


def all_tenants(world: dict[str, tuple[Any, Any]]) -> list[Any]:
    return [t for pair in world.values() for t in pair]


__all__ = [
    "provision",
    "remove_tenants",
    "teardown_tenant",
    "ISOLATIONS",
    "MEMBER_PASSWORD",
    "all_tenants",
    "allow_tenant_aliases",
    "make_tenant",
    "seed_tenant",
    "tenancy_templates",
    "tenant_world",
    "unique_slug",
]


@pytest.fixture(autouse=True)
def _tenant_hosts_see_the_test_transaction(request, monkeypatch):
    """A test inside one transaction (the default) would not see its own rows from the data-plane
    role's separate connection: there, requests on tenant hosts use `default`. Transactional tests
    (and real browsers) keep the real data-plane role, which tests/test_least_privilege.py checks."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(marker and marker.kwargs.get("transaction"))
    every_alias = bool(marker and marker.kwargs.get("databases") == "__all__")
    if not (transactional and every_alias):
        from tenants import databases

        monkeypatch.setattr(databases, "data_alias_override", "default")
    yield
