"""Cross-tenant isolation, proved on real PostgreSQL as the real app role.

Two tenants of every isolation level (the two shared ones in the same pool),
each seeded with members and accounts. Hypothesis generates attacks — an actor
tenant trying to read, insert, update or delete a victim tenant's rows through
the ORM, raw SQL and the workspace HTTP pages — and each example checks that
the actor saw none of the victim's rows and that the victim's rows are
byte-for-byte unchanged afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import DatabaseError, connections, transaction
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from psycopg import sql

from tenants.context import current_settings, tenant_context
from tenants.models import Placement, Tenant
from tenants.selectors import host_cache_clear
from tests.support.tenancy import ISOLATIONS, MEMBER_PASSWORD, all_tenants
from workspace.models import Account, Member

pytestmark = pytest.mark.django_db(databases="__all__")

GENERATED = hsettings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- helpers -------------------------------------------------------------------------


def snapshot(tenant) -> dict:
    """Everything the tenant owns, read in its own context."""
    with tenant_context(tenant) as alias:
        return {
            "members": list(Member.objects.using(alias).order_by("pk").values()),
            "accounts": list(Account.objects.using(alias).order_by("pk").values()),
        }


def victim_markers(tenant) -> list[str]:
    """Strings only the victim's pages could contain (emails and names embed its unique slug)."""
    slug = tenant.slug
    return [f"owner@{slug}.test", f"m0@{slug}.test", f"m1@{slug}.test", f"{slug} account 0", f"{slug} account 1"]


@contextmanager
def attempt(alias: str):
    """Run one attack statement in a savepoint; a refusal by PostgreSQL is an acceptable outcome."""
    try:
        with transaction.atomic(using=alias):
            yield
    except DatabaseError:
        pass


@contextmanager
def rolled_back(*tenants):
    """Undo everything an example did (on every alias involved), so examples never see each other."""
    from contextlib import ExitStack

    aliases = {"default"} | {t.placement.database_alias for t in tenants}
    with ExitStack() as stack:
        for alias in sorted(aliases):
            stack.enter_context(transaction.atomic(using=alias))
        yield
        for alias in aliases:
            transaction.set_rollback(True, using=alias)


def control_plane_schemas() -> list[str]:
    names = list(Placement.objects.exclude(kind=Placement.Kind.DATABASE).values_list("schema_name", flat=True))
    return [*names, "public"]


def assert_rows_belong_to(rows, tenant) -> None:
    assert all(str(tenant_id) == str(tenant.pk) for (tenant_id, *_rest) in rows), rows


# --- the attacks --------------------------------------------------------------------------


def _orm_read_by_pk(actor, victim, alias, pk):
    rows = list(Member.objects.filter(pk=pk).values_list("tenant_id", "email"))
    rows += list(Account.objects.filter(pk=pk).values_list("tenant_id", "name"))
    assert_rows_belong_to(rows, actor)


def _orm_filter_victim(actor, victim, alias, pk):
    assert not Member.objects.filter(tenant_id=victim.pk).exists()
    assert Account.objects.filter(tenant_id=victim.pk).count() == 0
    assert_rows_belong_to(Member.objects.values_list("tenant_id", "email"), actor)


def _orm_update_by_pk(actor, victim, alias, pk):
    with attempt(alias):
        Member.objects.filter(pk=pk).update(name="pwned")
        Account.objects.filter(pk=pk).update(balance=Decimal("-1"))


def _orm_update_victim_filter(actor, victim, alias, pk):
    with attempt(alias):
        assert Account.objects.filter(tenant_id=victim.pk).update(balance=Decimal("-1")) == 0


def _orm_delete_by_pk(actor, victim, alias, pk):
    with attempt(alias):
        Member.objects.filter(pk=pk).delete()
        Account.objects.filter(pk=pk).delete()


def _orm_insert_as_victim(actor, victim, alias, pk):
    with pytest.raises(DatabaseError), transaction.atomic(using=alias):
        Account.objects.create(tenant_id=victim.pk, name="planted", currency="EUR")


def _orm_move_own_row_to_victim(actor, victim, alias, pk):
    own = Account.objects.order_by("pk").first()
    assert own is not None
    with pytest.raises(DatabaseError), transaction.atomic(using=alias):
        Account.objects.filter(pk=own.pk).update(tenant_id=victim.pk)


def _raw_select_everything_reachable(actor, victim, alias, pk):
    schemas = control_plane_schemas() if alias == "default" else ["public"]
    with connections[alias].cursor() as cursor:
        for schema in schemas:
            for table in ("workspace_member", "workspace_account"):
                cursor.execute(
                    sql.SQL("SELECT tenant_id, id FROM {}.{}")
                    .format(sql.Identifier(schema), sql.Identifier(table))
                    .as_string(None)
                )
                assert_rows_belong_to(cursor.fetchall(), actor)


def _raw_update_where_victim(actor, victim, alias, pk):
    with attempt(alias), connections[alias].cursor() as cursor:
        cursor.execute("UPDATE workspace_account SET balance = -1 WHERE tenant_id = %s OR id = %s", [victim.pk, pk])
        cursor.execute("UPDATE workspace_member SET email = 'x@evil.test' WHERE id = %s", [pk])


def _raw_delete_where_victim(actor, victim, alias, pk):
    with attempt(alias), connections[alias].cursor() as cursor:
        cursor.execute("DELETE FROM workspace_member WHERE tenant_id = %s OR id = %s", [victim.pk, pk])


def _raw_insert_as_victim(actor, victim, alias, pk):
    with pytest.raises(DatabaseError), transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute(
            "INSERT INTO workspace_member (tenant_id, name, email, password, is_admin, is_active, created_at) "
            "VALUES (%s, 'planted', 'planted@evil.test', '', true, true, now())",
            [victim.pk],
        )


def _raw_reset_context_then_read(actor, victim, alias, pk):
    # Even code that clears the setting mid-transaction sees nothing rather than everything.
    with attempt(alias), connections[alias].cursor() as cursor:
        cursor.execute("SELECT set_config('app.current_tenant_id', '', true)")
        cursor.execute("SELECT count(*) FROM workspace_member")
        assert cursor.fetchone()[0] == 0
        raise DatabaseError("roll the cleared setting back")


ATTACKS = {
    f.__name__.lstrip("_"): f
    for f in (
        _orm_read_by_pk, _orm_filter_victim, _orm_update_by_pk, _orm_update_victim_filter, _orm_delete_by_pk,
        _orm_insert_as_victim, _orm_move_own_row_to_victim, _raw_select_everything_reachable,
        _raw_update_where_victim, _raw_delete_where_victim, _raw_insert_as_victim, _raw_reset_context_then_read,
    )
}  # fmt: skip


def run_attack(name: str, actor, victim, pk: int) -> None:
    with rolled_back(actor, victim):
        before = snapshot(victim)
        with tenant_context(actor) as alias:
            ATTACKS[name](actor, victim, alias, pk)
        assert snapshot(victim) == before, f"{name} by {actor.slug} changed {victim.slug}'s rows"


def victim_pks(tenant) -> list[int]:
    s = snapshot(tenant)
    return sorted({r["id"] for r in s["members"]} | {r["id"] for r in s["accounts"]})


# --- generated cross-tenant cases ------------------------------------------------------------


@pytest.mark.parametrize("isolation", ISOLATIONS)
@GENERATED
@given(data=st.data())
def test_no_attack_reaches_the_other_tenant_of_the_same_isolation_level(tenant_world, isolation, data):
    a, b = tenant_world[isolation]
    actor, victim = data.draw(st.sampled_from([(a, b), (b, a)]), label="actor, victim")
    attack = data.draw(st.sampled_from(sorted(ATTACKS)), label="attack")
    pk = data.draw(st.sampled_from(victim_pks(victim)), label="victim pk")
    run_attack(attack, actor, victim, pk)


@GENERATED
@given(data=st.data())
def test_no_attack_reaches_a_tenant_of_another_isolation_level(tenant_world, data):
    tenants = all_tenants(tenant_world)
    actor = data.draw(st.sampled_from(tenants), label="actor")
    victim = data.draw(st.sampled_from([t for t in tenants if t.isolation != actor.isolation]), label="victim")
    attack = data.draw(st.sampled_from(sorted(ATTACKS)), label="attack")
    pk = data.draw(st.sampled_from(victim_pks(victim)), label="victim pk")
    run_attack(attack, actor, victim, pk)


def test_the_two_shared_tenants_really_share_tables_and_only_rls_separates_them(tenant_world):
    a, b = tenant_world["shared"]
    assert a.placement_id == b.placement_id
    schema = a.placement.schema_name
    with tenant_context(a) as alias, connections[alias].cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT count(*) FROM {}.workspace_member").format(sql.Identifier(schema)).as_string(None)
        )
        seen_by_a = cursor.fetchone()[0]
    with connections["owner"].cursor() as cursor:  # the owner is subject to FORCE'd RLS too
        cursor.execute(
            sql.SQL("SELECT count(*) FROM {}.workspace_member").format(sql.Identifier(schema)).as_string(None)
        )
        assert cursor.fetchone()[0] == 0
    assert seen_by_a == len(snapshot(a)["members"]) == 3


def test_each_tenant_sees_exactly_its_own_rows_through_the_orm(tenant_world):
    for tenant in all_tenants(tenant_world):
        with tenant_context(tenant):
            members = list(Member.objects.all())
            accounts = list(Account.objects.all())
        assert len(members) == 3 and len(accounts) == 2
        assert {m.tenant_id for m in members} | {a.tenant_id for a in accounts} == {tenant.pk}
        assert all(m.email.endswith(f"@{tenant.slug}.test") for m in members)


def test_a_dedicated_tenants_rows_never_touch_the_control_plane_database(tenant_world):
    for tenant in tenant_world["dedicated"]:
        with tenant_context(tenant) as alias:
            assert alias != "default"
            Member.objects.create(name="Dedicated only", email=f"only@{tenant.slug}.test")
        with connections["owner"].cursor() as cursor:
            for schema in control_plane_schemas():
                cursor.execute(
                    sql.SQL("SELECT count(*) FROM {}.workspace_member WHERE email = %s").format(sql.Identifier(schema)),
                    [f"only@{tenant.slug}.test"],
                )
                assert cursor.fetchone()[0] == 0
        with connections[tenant.placement.owner_alias].cursor() as cursor:
            cursor.execute("SELECT current_database()")
            assert cursor.fetchone()[0] == tenant.placement.db_name


# --- no tenant context ----------------------------------------------------------------------


def test_without_a_tenant_context_the_data_plane_shows_zero_rows_not_all(tenant_world):
    assert current_settings("default")[0] is None
    assert Member.objects.count() == 0 and Account.objects.count() == 0
    pool = tenant_world["shared"][0].placement.schema_name
    with connections["default"].cursor() as cursor:
        cursor.execute(sql.SQL("SELECT count(*) FROM {}.workspace_member").format(sql.Identifier(pool)))
        assert cursor.fetchone()[0] == 0  # although six members live there


def test_without_a_tenant_context_writes_are_refused(tenant_world):
    with pytest.raises(DatabaseError), transaction.atomic():
        Member.objects.create(name="Nobody", email="nobody@example.test")


# --- through the HTTP pages --------------------------------------------------------------------


def host(tenant) -> str:
    return tenant.domains.get(is_primary=True).domain


def signed_in(tenant) -> Client:
    client = Client(HTTP_HOST=host(tenant))
    response = client.post("/login/", {"email": f"owner@{tenant.slug}.test", "password": MEMBER_PASSWORD})
    assert response.status_code == 302, response.content[:300]
    return client


def test_every_workspace_list_page_shows_only_its_own_tenant(tenant_world):
    tenants = all_tenants(tenant_world)
    for tenant in tenants:
        client = signed_in(tenant)
        for path in ("/members/", "/accounts/"):
            body = client.get(path).content.decode()
            assert f"{tenant.slug}" in body
            for other in tenants:
                if other is not tenant:
                    assert not any(marker in body for marker in victim_markers(other)), (tenant.slug, other.slug)


HTTP_ATTACKS = ("member_detail", "account_detail", "search_victim", "create_account", "create_member_with_victim_email")


@GENERATED
@given(data=st.data())
def test_no_workspace_page_reveals_or_changes_another_tenants_rows(tenant_world, data):
    tenants = all_tenants(tenant_world)
    actor = data.draw(st.sampled_from(tenants), label="actor")
    victim = data.draw(st.sampled_from([t for t in tenants if t is not actor]), label="victim")
    attack = data.draw(st.sampled_from(HTTP_ATTACKS), label="attack")
    pk = data.draw(st.sampled_from(victim_pks(victim)), label="victim pk")
    with rolled_back(actor, victim):
        _http_attack(actor, victim, attack, pk)


def _http_attack(actor, victim, attack: str, pk: int) -> None:
    before = snapshot(victim)
    client = signed_in(actor)
    if attack == "member_detail":
        response = client.get(f"/members/{pk}/")
    elif attack == "account_detail":
        response = client.get(f"/accounts/{pk}/")
    elif attack == "search_victim":
        response = client.get("/members/", {"q": f"@{victim.slug}.test"})
    elif attack == "create_account":
        response = client.post("/accounts/new/", {"name": f"{victim.slug} account 9", "currency": "EUR"}, follow=True)
    else:
        response = client.post("/members/new/", {"name": "Twin", "email": f"owner@{victim.slug}.test"}, follow=True)
    assert response.status_code in (200, 302, 404)
    body = response.content.decode()
    if attack not in ("create_account", "create_member_with_victim_email"):  # those echo what the actor typed
        assert not any(marker in body for marker in victim_markers(victim))
    assert snapshot(victim) == before


def test_a_session_from_one_tenant_is_not_signed_in_on_another_tenants_host(tenant_world):
    a, b = tenant_world["shared"]
    client = signed_in(a)
    assert client.get("/members/").status_code == 200
    client.defaults["HTTP_HOST"] = host(b)  # same cookie jar, other tenant's host
    response = client.get("/members/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_member_cannot_sign_in_on_another_tenants_host(tenant_world):
    a, b = tenant_world["schema"]
    client = Client(HTTP_HOST=host(b))
    response = client.post("/login/", {"email": f"owner@{a.slug}.test", "password": MEMBER_PASSWORD})
    assert response.status_code == 401
    assert "do not match" in response.content.decode()


def test_a_suspended_tenant_gets_a_clear_page_and_no_data(tenant_world):
    tenant = tenant_world["dedicated"][0]
    client = signed_in(tenant)
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)  # behind the services' back:
    host_cache_clear()  # what tenant_suspend does (other processes follow within TENANCY_HOST_CACHE_SECONDS)
    response = client.get("/members/")
    assert response.status_code == 503
    body = response.content.decode()
    assert "This workspace is suspended" in body and f"owner@{tenant.slug}.test" not in body


def test_an_unknown_host_gets_a_friendly_404_page(tenant_world):
    response = Client(HTTP_HOST="no-such-tenant.localhost").get("/members/")
    assert response.status_code == 404
    assert "There is no workspace here" in response.content.decode()


def test_an_unverified_custom_domain_does_not_resolve_but_a_verified_one_does(tenant_world, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "books.example.test"]  # custom domains must be allowed hosts
    tenant = tenant_world["shared"][1]
    domain = tenant.domains.create(domain="books.example.test", verified=False)
    assert Client(HTTP_HOST="books.example.test").get("/login/").status_code == 404
    domain.verified = True
    domain.save()
    host_cache_clear()
    response = Client(HTTP_HOST="books.example.test").get("/login/")
    assert response.status_code == 200 and tenant.name in response.content.decode()


def test_host_lookups_are_cached_briefly_and_cleared_by_the_services(tenant_world, settings):
    from tenants import selectors

    tenant = tenant_world["schema"][1]
    settings.TENANCY_HOST_CACHE_SECONDS = 60
    host_cache_clear()
    assert selectors.tenant_for_host(host(tenant)).status == "active"
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
    assert selectors.tenant_for_host(host(tenant)).status == "active"  # served from the cache
    host_cache_clear()
    assert selectors.tenant_for_host(host(tenant)).status == "suspended"
    settings.TENANCY_HOST_CACHE_SECONDS = 0
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.ACTIVE)
    assert selectors.tenant_for_host(host(tenant)).status == "active"  # no cache at 0
