"""Provisioning: every isolation level, idempotent steps, compensations that leave nothing behind."""

from __future__ import annotations

import dataclasses
import uuid

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from core import dbroles
from tenants import placements
from tenants.context import tenant_context
from tenants.models import Domain, Placement, Tenant
from tenants.provisioning.steps import PROVISIONING_STEPS, ProvisioningError
from tests.support.tenancy import ISOLATIONS, provision, teardown_tenant, unique_slug
from workspace.models import Member

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])


@pytest.fixture(autouse=True)
def _ready(tenancy_templates, allow_tenant_aliases):
    return None


def schemas() -> set[str]:
    with psycopg.connect(**dbroles.conninfo(connections.settings["owner"])) as conn:
        return {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}


def databases() -> set[str]:
    """Databases of this test run (other runs share the server)."""
    prefix = connections.settings["owner"]["NAME"] + "_"
    with dbroles.admin_connect() as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [prefix])}


def state_of(tenant_id) -> dict:
    tenant = Tenant.objects.select_related("placement").get(pk=tenant_id)
    members = None
    if tenant.placement_id:
        with tenant_context(tenant) as alias:
            members = list(Member.objects.using(alias).values_list("email", "is_admin"))
    return {
        "status": tenant.status,
        "placement": tenant.placement_id,
        "placements": Placement.objects.count(),
        "domains": list(Domain.objects.filter(tenant=tenant).values_list("domain", "is_primary", "verified")),
        "members": members,
        "schemas": schemas(),
        "databases": databases(),
    }


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_provisioning_creates_an_active_tenant_with_its_placement_domain_and_owner(make_tenant, isolation):
    tenant = make_tenant(isolation, seed=False, owner_email="Boss@Example.test")
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    kind = {"shared": "pool", "schema": "schema", "dedicated": "database"}[isolation]
    assert tenant.placement.kind == kind
    if isolation == "schema":
        assert tenant.placement.schema_name == "t_" + tenant.slug.replace("-", "_")
        assert tenant.placement.schema_name in schemas()
    if isolation == "shared":
        assert tenant.placement.schema_name.startswith("pool_")
    if isolation == "dedicated":
        assert tenant.placement.db_name in databases()
        assert tenant.placement.db_name.startswith(connections.settings["owner"]["NAME"] + "_")
        assert "saas_app" not in tenant.placement.credentials_encrypted  # encrypted, not plain
    assert list(tenant.domains.values_list("domain", "is_primary", "verified")) == [
        (f"{tenant.slug}.localhost", True, True)
    ]
    with tenant_context(tenant):
        owner = Member.objects.get()
    assert owner.email == "boss@example.test" and owner.is_admin and not owner.check_password("")
    assert placements.migrate_placement(tenant.placement, plan_only=True) == []  # cloned from a current template


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_every_step_can_run_twice_without_changing_the_result(make_tenant, isolation):
    tenant = make_tenant(isolation, seed=False, owner_email="owner@example.test")
    before = state_of(tenant.pk)
    for step in PROVISIONING_STEPS[isolation]:
        step.action(tenant.pk)
    assert state_of(tenant.pk) == before


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_compensating_every_step_leaves_nothing_behind(make_tenant, isolation):
    baseline_schemas, baseline_dbs = schemas(), databases()
    tenant = make_tenant(isolation, seed=True, owner_email="owner@example.test")
    placement = tenant.placement
    for _ in range(2):  # compensations are idempotent too
        for step in reversed(PROVISIONING_STEPS[isolation]):
            step.compensate(tenant.pk)
    tenant.refresh_from_db()
    assert tenant.placement is None and tenant.status == Tenant.Status.FAILED
    assert not tenant.domains.exists()
    assert schemas() == baseline_schemas | ({placement.schema_name} if isolation == "shared" else set())
    assert databases() == baseline_dbs
    if isolation == "shared":  # the pool stays (capacity for others) but holds none of this tenant's rows
        assert Placement.objects.filter(pk=placement.pk).exists()
        with psycopg.connect(**dbroles.conninfo(connections.settings["owner"])) as conn:
            conn.execute("SELECT set_config('app.current_tenant_id', %s, false)", [str(tenant.pk)])
            for table in ("workspace_member", "workspace_account"):
                count = conn.execute(
                    psycopg.sql.SQL("SELECT count(*) FROM {}.{}").format(
                        psycopg.sql.Identifier(placement.schema_name), psycopg.sql.Identifier(table)
                    )
                ).fetchone()[0]
                assert count == 0
    else:
        assert not Placement.objects.filter(pk=placement.pk).exists()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_failing_step_rolls_everything_back_and_frees_the_slug(isolation):
    baseline_schemas, baseline_dbs = schemas(), databases()
    steps = list(PROVISIONING_STEPS[isolation])
    index = next(i for i, s in enumerate(steps) if s.name == "create_domain")

    def explode(tenant_id):
        raise RuntimeError("the network fell over")

    steps[index] = dataclasses.replace(steps[index], action=explode)
    slug = unique_slug("fail")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PROVISIONING_STEPS, isolation, steps)
        with pytest.raises(ProvisioningError, match="rolled back"):
            provision(isolation, slug, owner_email="o@example.test")
    assert not Tenant.objects.filter(slug=slug).exists()
    assert schemas() - baseline_schemas <= {s for s in schemas() if s.startswith("pool_")}
    assert databases() == baseline_dbs
    tenant = provision(isolation, slug)  # the slug is free again
    teardown_tenant(tenant.pk)


def test_a_full_pool_makes_the_next_shared_tenant_open_a_new_pool(make_tenant):
    first = make_tenant("shared", seed=False)
    pool = first.placement
    Placement.objects.filter(pk=pool.pk).update(capacity=pool.tenants.count())
    second = make_tenant("shared", seed=False)
    assert second.placement_id != pool.pk and second.placement.kind == Placement.Kind.POOL
    assert second.placement.schema_name in schemas()


def test_provision_tenant_prints_the_uuid_on_the_last_line(capsys):
    slug = unique_slug("cmd")
    call_command("provision_tenant", slug, "--isolation", "schema", "--name", "Command Co")
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    tenant = Tenant.objects.get(pk=uuid.UUID(last_line))
    assert (tenant.slug, tenant.name, tenant.status) == (slug, "Command Co", Tenant.Status.ACTIVE)
    teardown_tenant(tenant.pk)


@pytest.mark.parametrize(
    "args, message",
    [
        (["Bad Slug", "--isolation", "shared"], "lowercase letters"),
        (["admin", "--isolation", "shared"], "reserved"),
        (["good-slug", "--isolation", "shared", "--owner-email", "not-an-email"], "not a valid email"),
    ],
)
def test_provision_tenant_refuses_bad_input_with_one_line_and_creates_nothing(args, message):
    before = (Tenant.objects.count(), schemas(), databases())
    with pytest.raises(CommandError, match=message) as info:
        call_command("provision_tenant", *args)
    assert "\n" not in str(info.value)
    assert (Tenant.objects.count(), schemas(), databases()) == before


def test_provision_tenant_refuses_a_taken_slug(make_tenant):
    tenant = make_tenant("shared", seed=False)
    with pytest.raises(CommandError, match="already exists"):
        call_command("provision_tenant", tenant.slug, "--isolation", "dedicated")


def test_the_template_schema_is_rebuilt_when_a_tenant_migration_is_missing():
    with psycopg.connect(**dbroles.conninfo(connections.settings["owner"])) as conn:
        conn.execute(
            psycopg.sql.SQL("DELETE FROM {}.django_migrations WHERE app = 'workspace'").format(
                psycopg.sql.Identifier(placements.template_schema())
            )
        )
        conn.commit()
    assert not placements.template_schema_is_current()
    placements.template_schema_ensure()
    assert placements.template_schema_is_current()


def test_step_names_are_unique_and_every_step_has_a_compensation():
    for isolation, steps in PROVISIONING_STEPS.items():
        names = [s.name for s in steps]
        assert len(names) == len(set(names)), isolation
        assert all(callable(s.action) and callable(s.compensate) and s.title for s in steps)
        assert names[0] == "begin" and names[-1] == "activate"
