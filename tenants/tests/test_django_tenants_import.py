"""Adopting a django-tenants deployment (`import_django_tenants`), against a real django-tenants project.

The project is bench/dt_settings.py over our `workspace` app as a django-tenants deployment has it
before adopting us (bench/dt_workspace_migrations: no tenant_id, no RLS), built by django-tenants
itself in a subprocess (`migrate_schemas`, `Client.create_schema`, rows written inside its
`schema_context`): once in a database of its own on the same server, once in this control plane's
own database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client as HttpClient
from django.utils import timezone
from psycopg import sql

from audit.models import AuditEntry
from bench import dt_project
from core import dbroles
from core.actors import SystemActor
from jobs.models import Job
from sagas.models import SagaState
from sagas.services import saga_run_inline
from tenants import adoption, placements
from tenants.adoption import django_tenants_import, slug_for_schema
from tenants.context import tenant_context
from tenants.models import Domain, MigrationState, Tenant, TenantImport
from tenants.moves.services import tenant_move
from tests.support import faults
from tests.support.tenancy import MEMBER_PASSWORD, teardown_tenant
from tests.test_isolation import ATTACKS, run_attack, victim_pks
from workspace import ledger
from workspace.models import Account, Member

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])
# Every statement number with DT_IMPORT_CRASH_STRIDE=1; by default every 6th.
CRASH_STRIDE = max(1, int(os.environ.get("DT_IMPORT_CRASH_STRIDE", "6")))


def owner_url(dbname: str) -> str:
    s = connections.settings["owner"]
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{dbname}"


def fresh_owned_database(name: str) -> None:
    """An empty database `name` owned by our owner role (dropped first if a run left one), without the
    app grants `dbroles.ensure_database` adds: it stands for someone else's deployment."""
    dbroles.drop_database(name)
    with dbroles.admin_connect() as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(settings.DB_OWNER_ROLE))
        )


def build_django_tenants(url: str, tenants: list[dict[str, Any]]) -> None:
    dt_project.build(url, tenants, owner_role=settings.DB_OWNER_ROLE, owner_password=settings.DB_OWNER_PASSWORD)


def people(prefix: str, n: int) -> list[list[Any]]:
    hashed = make_password(MEMBER_PASSWORD)
    return [[f"{prefix} person {i}", f"p{i}@{prefix}.test", hashed, i == 0] for i in range(n)]


DEPLOYMENT: list[dict[str, Any]] = [
    {"schema": "public", "name": "Public", "domains": ["dt.example"]},
    {
        "schema": "acme", "name": "Acme Corp", "domains": ["acme.dt.example", "www.acme.example"],
        "members": people("acme", 3), "accounts": [["Acme main", "120.50"], ["Acme savings", "7.25"]],
    },
    {
        "schema": "beta_co", "name": "Beta Co", "domains": ["beta.dt.example"],
        "members": people("beta", 2), "accounts": [["Beta main", "99.00"]],
    },
]  # fmt: skip


@pytest.fixture(scope="module")
def source_db(tenancy_templates, django_db_blocker) -> Iterator[str]:
    """A django-tenants deployment in its own database on this server: public + acme + beta_co."""
    name = f"{settings.DATABASES['owner']['NAME']}_dtsrc"
    with django_db_blocker.unblock():
        fresh_owned_database(name)
        build_django_tenants(owner_url(name), DEPLOYMENT)
    yield owner_url(name)
    with django_db_blocker.unblock():
        dbroles.drop_database(name)


def source_fingerprint(url: str) -> dict[str, Any]:
    """Every table of the source: its columns, RLS flags and an md5 of its rows."""
    found: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        for schema, table, rls, force in tables:
            q = sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {}.{} t")
            rows = conn.execute(q.format(sql.Identifier(schema), sql.Identifier(table))).fetchone()
            cols = conn.execute(
                "SELECT string_agg(column_name || ':' || is_nullable, ',' ORDER BY ordinal_position) "
                "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                [schema, table],
            ).fetchone()
            found[f"{schema}.{table}"] = (rows, cols, rls, force)
    return found


def cleanup_imports() -> None:
    for tenant_id in list(Tenant.objects.values_list("pk", flat=True)):
        teardown_tenant(tenant_id)
    for slug in ("acme", "beta-co", "gamma", "dtsame-one", "dtsame-two", "shop"):
        placements.drop_schema(f"t_{slug.replace('-', '_')}")


@pytest.fixture
def imported(source_db, allow_tenant_aliases) -> Iterator[dict[str, Tenant]]:
    report = django_tenants_import(url=source_db)
    assert not report.refused, [p.describe() for p in report.refused]
    yield {t.slug: t for t in Tenant.objects.select_related("placement").filter(pk__in=report.imported)}
    cleanup_imports()


def test_it_imports_each_django_tenants_schema_as_a_schema_tenant_with_its_domains(imported):
    assert sorted(imported) == ["acme", "beta-co"]  # public skipped
    acme = imported["acme"]
    assert (acme.name, acme.isolation, acme.status, acme.placement.kind) == ("Acme Corp", "schema", "active", "schema")
    assert acme.placement.schema_name == "t_acme"
    hosts = dict(Domain.objects.filter(tenant=acme).values_list("domain", "is_primary"))
    assert hosts == {f"acme.{settings.BASE_DOMAIN}": True, "acme.dt.example": False, "www.acme.example": False}
    record = TenantImport.objects.get(tenant=acme)
    assert (record.source_schema, record.tables["workspace_member"], record.tables["workspace_account"]) == (
        "acme",
        3,
        2,
    )
    entry = AuditEntry.objects.get(action="tenant.import", target_id=str(acme.pk))
    assert "acme" in entry.summary and entry.details["rows"]["workspace_member"] == 3


def test_each_tenant_is_one_job_that_forgets_the_sources_credentials_when_it_ends(imported):
    jobs = list(Job.objects.filter(kind="tenants.django_tenants_import").order_by("id"))
    assert [(j.state, j.payload["schema"]) for j in jobs] == [("succeeded", "acme"), ("succeeded", "beta_co")]
    assert jobs[0].result["tenant_id"] == str(imported["acme"].pk) and jobs[0].result["rows"]["workspace_member"] == 3
    assert all("source" not in j.payload for j in jobs)


def test_imported_rows_are_read_in_the_tenants_context_and_new_rows_get_fresh_ids(imported):
    acme = imported["acme"]
    with tenant_context(acme) as alias:
        members = sorted(Member.objects.using(alias).values_list("email", flat=True))
        balances = sorted(str(b) for b in Account.objects.using(alias).values_list("balance", flat=True))
        highest = max(Member.objects.using(alias).values_list("pk", flat=True))
        newcomer = Member.objects.using(alias).create(name="New", email="new@acme.test")
    assert members == ["p0@acme.test", "p1@acme.test", "p2@acme.test"]
    assert balances == ["120.50", "7.25"]
    assert newcomer.pk > highest and str(newcomer.tenant_id) == str(acme.pk)
    with tenant_context(acme) as alias:  # the ledger opens the imported balance in the event log first
        main = Account.objects.using(alias).get(name="Acme main")
        ledger.ledger_deposit(account_id=main.pk, amount="10.00")
    with tenant_context(acme):
        assert str(ledger.ledger_balance_at(account_id=main.pk, at=timezone.now())) == "130.50"


def test_the_same_deployment_under_another_host_name_is_not_imported_twice(imported, source_db):
    other = source_db.replace("@127.0.0.1:", "@localhost:") if "@127.0.0.1:" in source_db else source_db
    report = django_tenants_import(url=other)
    assert report.imported == [] and not report.refused


def test_a_schema_left_by_an_interrupted_import_is_redone_and_any_other_refuses(source_db, allow_tenant_aliases):
    """A run killed between the copy's commit and the control plane's leaves a marked schema, no tenant."""
    with psycopg.connect(source_db) as conn:
        source = adoption.source_label(conn)
    placements.clone_template_schema("t_acme", comment=adoption.MARK + f"{source} acme")
    placements.clone_template_schema("t_beta_co")  # not ours: somebody else's schema of that name
    try:
        report = django_tenants_import(url=source_db)
        acme = Tenant.objects.get(slug="acme")
        with tenant_context(acme) as alias:
            assert Member.objects.using(alias).count() == 3
        beta = next(p for p in report.plans if p.schema == "beta_co")
        assert beta.reason.endswith("The schema t_beta_co already exists and was not made by this import.")
        assert not Tenant.objects.filter(slug="beta-co").exists() and placements.schema_exists("t_beta_co")
    finally:
        cleanup_imports()


def test_an_imported_tenant_sees_none_of_another_tenants_rows(imported):
    acme, beta = imported["acme"], imported["beta-co"]
    with tenant_context(acme), connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM t_beta_co.workspace_member")
        assert cursor.fetchone()[0] == 0  # RLS: beta's rows are not acme's
        with pytest.raises(Exception, match="row-level security"):
            cursor.execute(
                "INSERT INTO t_acme.workspace_member (name, email, password, is_admin, is_active, created_at, tenant_id) "
                "VALUES ('x', 'x@x.test', '', false, true, now(), %s)",
                [str(beta.pk)],
            )
    with connections["default"].cursor() as cursor:  # no tenant context: nothing at all
        cursor.execute("SELECT count(*) FROM t_acme.workspace_member")
        assert cursor.fetchone()[0] == 0


def test_an_imported_schema_is_exactly_what_our_migrations_make(imported):
    placement = imported["acme"].placement
    with placements.owner_connect(autocommit=True) as conn:
        tables = conn.execute(
            "SELECT c.relname, c.relrowsecurity AND c.relforcerowsecurity, "
            "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid), "
            "(SELECT attnotnull FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id') "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 't_acme' AND c.relkind = 'r' AND c.relname <> 'django_migrations'"
        ).fetchall()
    assert tables and all(rls and policies == 4 and not_null for _, rls, policies, not_null in tables), tables
    assert {"workspace_member", "workspace_privacyintake", "tenantlog_event"} <= {t[0] for t in tables}
    assert placements.migrate_placement(placement, plan_only=True) == []  # nothing pending
    state = MigrationState.objects.get(placement=placement)
    assert {f"{app}.{name}" for app, name in placements.expected_migrations()} <= set(state.applied)


def test_the_workspace_host_of_an_imported_tenant_signs_its_members_in(imported, settings):
    settings.ALLOWED_HOSTS = ["*"]
    for host in (f"acme.{settings.BASE_DOMAIN}", "www.acme.example"):
        client = HttpClient(HTTP_HOST=host)
        assert client.post("/login/", {"email": "p0@acme.test", "password": MEMBER_PASSWORD}).status_code == 302
        page = client.get("/members/")
        assert page.status_code == 200 and b"acme person 1" in page.content and b"beta person" not in page.content
    replayed = HttpClient(HTTP_HOST=f"beta-co.{settings.BASE_DOMAIN}")
    replayed.cookies = client.cookies  # acme's session on beta's host means nothing there
    assert replayed.get("/members/").status_code == 302


def test_the_tenant_page_says_where_an_imported_tenant_came_from(imported, client_for, viewer):
    page = client_for(viewer).get(f"/tenants/{imported['acme'].pk}/")
    assert page.status_code == 200
    assert b'from django-tenants schema <span class="mono">acme</span>' in page.content


def attack_both_ways(a: Tenant, b: Tenant) -> None:
    """Every attack of the isolation suite (ORM, raw SQL, resetting the setting), each way, on ids
    both tenants use (each imported schema numbered its rows from 1)."""
    for actor, victim in ((a, b), (b, a)):
        for pk in victim_pks(victim):
            for name in sorted(ATTACKS):
                run_attack(name, actor, victim, pk)


def test_no_isolation_attack_reaches_another_imported_tenant(imported):
    attack_both_ways(imported["acme"], imported["beta-co"])


def test_imported_tenants_moved_to_pools_keep_their_rows_and_stay_apart(imported, settings):
    settings.TENANCY_MOVE_PURGE_GRACE_SECONDS = 0
    moved = []
    for tenant in (imported["acme"], imported["beta-co"]):
        move = tenant_move(tenant=tenant, to="shared", actor=SystemActor("tests"))
        saga = saga_run_inline(saga_id=move.saga_id, timeout=120)
        assert saga.state == SagaState.COMPLETED, saga.error
        moved.append(Tenant.objects.select_related("placement").get(pk=tenant.pk))
    acme, beta = moved
    assert (acme.isolation, acme.placement.kind, beta.placement.kind) == ("shared", "pool", "pool")
    # Both numbered their rows from 1 in django-tenants and keep their ids: the second move finds the
    # first one's ids in the pool and opens another (tenants/moves/copy.py, key collisions).
    assert acme.placement_id != beta.placement_id
    with tenant_context(acme) as alias:
        assert Member.objects.using(alias).count() == 3 and Account.objects.using(alias).count() == 2
    with tenant_context(beta) as alias:
        assert sorted(Member.objects.using(alias).values_list("email", flat=True)) == ["p0@beta.test", "p1@beta.test"]
    attack_both_ways(acme, beta)


def test_running_the_import_again_imports_nothing_twice(imported, source_db):
    before = (Tenant.objects.count(), Domain.objects.count(), AuditEntry.objects.filter(action="tenant.import").count())
    report = django_tenants_import(url=source_db)
    assert report.imported == [] and not report.refused
    assert {p.schema: p.action for p in report.plans} == {"public": "skip", "acme": "skip", "beta_co": "skip"}
    assert "already imported as tenant acme" in next(p.reason for p in report.plans if p.schema == "acme")
    assert (
        Tenant.objects.count(),
        Domain.objects.count(),
        AuditEntry.objects.filter(action="tenant.import").count(),
    ) == before
    with tenant_context(imported["acme"]) as alias:
        assert Member.objects.using(alias).count() == 3


def test_the_import_never_changes_the_source_database(source_db, allow_tenant_aliases):
    before = source_fingerprint(source_db)
    try:
        assert django_tenants_import(url=source_db).imported
        assert source_fingerprint(source_db) == before
    finally:
        cleanup_imports()


def test_a_dry_run_prints_the_plan_and_changes_nothing(source_db, capsys):
    call_command("import_django_tenants", "--database", source_db, "--dry-run")
    out, err = capsys.readouterr()
    assert "would import acme → tenant acme in schema t_acme (workspace_account 2, workspace_member 3," in err
    assert "public: skip" in err and out.strip().splitlines()[-1].startswith("dry run: 2 tenant(s) would be imported")
    assert not Tenant.objects.exists() and not placements.schema_exists("t_acme")


def test_a_tenant_that_fails_halfway_leaves_nothing_and_the_others_are_imported(
    source_db, allow_tenant_aliases, capsys
):
    """gamma's members share an email, which our unique (tenant_id, email) refuses in mid-copy."""
    dup = people("gamma", 2)
    dup[1][1] = dup[0][1]
    build_django_tenants(
        source_db, [{"schema": "gamma", "name": "Gamma", "domains": ["gamma.dt.example"], "members": dup}]
    )
    try:
        with pytest.raises(CommandError, match=r"^1 django-tenants tenant\(s\) were not imported \(gamma\)"):
            call_command("import_django_tenants", "--database", source_db)
        err = capsys.readouterr().err
        assert "gamma: refuse — failed and nothing of it was kept: duplicate key" in err
        assert sorted(Tenant.objects.values_list("slug", flat=True)) == ["acme", "beta-co"]
        assert not placements.schema_exists("t_gamma") and not Domain.objects.filter(domain="gamma.dt.example").exists()
        with psycopg.connect(source_db, autocommit=True) as conn:  # the customer fixes their data
            conn.execute("UPDATE gamma.workspace_member SET email = 'other@gamma.test' WHERE name = 'gamma person 1'")
        call_command("import_django_tenants", "--database", source_db)
        gamma = Tenant.objects.get(slug="gamma")
        with tenant_context(gamma) as alias:
            assert Member.objects.using(alias).count() == 2
    finally:
        with psycopg.connect(source_db, autocommit=True) as conn:
            conn.execute("DELETE FROM dt_tenants_domain WHERE domain = 'gamma.dt.example'")
            conn.execute("DELETE FROM dt_tenants_client WHERE schema_name = 'gamma'")
            conn.execute("DROP SCHEMA gamma CASCADE")
        cleanup_imports()


def test_it_imports_from_the_control_planes_own_database(allow_tenant_aliases):
    """The django-tenants tables beside ours in public, its schemas beside our placements."""
    url = owner_url(settings.DATABASES["owner"]["NAME"])
    build_django_tenants(url, [
        {"schema": "dtsame_one", "name": "One", "domains": ["one.dt.example"], "members": people("one", 2)},
        {"schema": "dtsame_two", "name": "Two", "domains": ["two.dt.example"], "members": people("two", 1)},
    ])  # fmt: skip
    try:
        report = django_tenants_import(url=url)
        assert report.same_database and not report.refused
        one = Tenant.objects.get(slug="dtsame-one")
        with tenant_context(one) as alias:
            assert sorted(Member.objects.using(alias).values_list("email", flat=True)) == ["p0@one.test", "p1@one.test"]
        assert placements.schema_exists("dtsame_one")  # the source schema stays as it was
        # ... and until it is dropped, the compliance check says where tenant data lies outside us
        from compliance.checks.isolation import stray_data

        stray = {p["schema"]: p for p in stray_data().evidence["problems"]}
        assert {"dtsame_one", "dtsame_two"} <= set(stray)
    finally:
        cleanup_imports()
        with placements.owner_connect(autocommit=True) as conn:
            for schema in ("dtsame_one", "dtsame_two"):
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
            conn.execute("DROP TABLE IF EXISTS public.dt_tenants_domain, public.dt_tenants_client")
            conn.execute("DELETE FROM django_migrations WHERE app IN ('dt_tenants', 'django_tenants')")
            conn.execute("DELETE FROM django_content_type WHERE app_label = 'dt_tenants'")


@pytest.fixture
def fault_hook(settings):
    from jobs import services

    settings.JOBS_FAULT_HOOK = "tests.support.faults.inject"
    services._fault_hook.cache_clear()
    yield
    faults.STATEMENTS.disarm()
    services._fault_hook.cache_clear()


@pytest.mark.crash
def test_an_import_converges_after_a_failure_after_any_of_its_sql_statements(
    source_db, allow_tenant_aliases, fault_hook
):
    """Each tenant's job fails once right after its Nth statement (planning, clone, copy, register,
    the cleanup): the retry imports the tenant whole, once, with nothing left of the failed attempt."""
    try:
        django_tenants_import(url=source_db, fault={"mode": "count_statements"})
        statements = faults.COUNTED["None"]
        cleanup_imports()
        audited = AuditEntry.objects.filter(action="tenant.import").count()  # append-only: never removed
        for n in range(1, statements + 1, CRASH_STRIDE):
            report = django_tenants_import(url=source_db, fault={"mode": "raise_after_statement", "n": n})
            assert len(report.imported) == 2 and not report.refused, (n, [p.describe() for p in report.refused])
            jobs = Job.objects.filter(
                kind="tenants.django_tenants_import", payload__run=Job.objects.latest("id").payload["run"]
            )
            assert all(j.attempts == 2 for j in jobs), f"no failure after statement {n}"
            acme = Tenant.objects.get(slug="acme")
            with tenant_context(acme) as alias:
                assert Member.objects.using(alias).count() == 3 and Account.objects.using(alias).count() == 2, n
            assert TenantImport.objects.count() == 2 and Domain.objects.count() == 5, n
            assert AuditEntry.objects.filter(action="tenant.import").count() == audited + 2, n
            audited += 2
            cleanup_imports()
    finally:
        cleanup_imports()


@pytest.fixture
def hand_made_db(tenancy_templates, django_db_blocker) -> Iterator[str]:
    """A deployment whose tables bend the conventions: no foreign key from the domain table, names
    that discovery cannot pair, and a table of another app in the tenant's schema."""
    name = f"{settings.DATABASES['owner']['NAME']}_dthand"
    with django_db_blocker.unblock():
        fresh_owned_database(name)
    url = owner_url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA saas")
        conn.execute("CREATE TABLE saas.customers (id integer PRIMARY KEY, schema_name text NOT NULL)")
        conn.execute("CREATE TABLE saas.hosts (id serial, domain text, is_primary boolean, tenant_id integer)")
        conn.execute("INSERT INTO saas.customers VALUES (7, 'shop')")
        conn.execute("INSERT INTO saas.hosts (domain, is_primary, tenant_id) VALUES ('Shop.Example.COM', true, 7)")
        conn.execute("CREATE SCHEMA shop")
        conn.execute(
            "CREATE TABLE shop.workspace_member (id integer PRIMARY KEY, name text, email text, password text, "
            "is_admin boolean, is_active boolean, created_at timestamptz)"
        )
        conn.execute("INSERT INTO shop.workspace_member VALUES (41, 'Ann', 'ann@shop.test', '', true, true, now())")
        conn.execute("CREATE TABLE shop.notes (id integer, body text)")
        conn.execute("INSERT INTO saas.customers VALUES (8, 'locked')")
        conn.execute("CREATE SCHEMA locked")
        conn.execute("CREATE TABLE locked.workspace_account (id integer PRIMARY KEY, name text)")
        conn.execute("INSERT INTO locked.workspace_account VALUES (1, 'hidden from its own owner')")
        conn.execute("ALTER TABLE locked.workspace_account ENABLE ROW LEVEL SECURITY")
        conn.execute("ALTER TABLE locked.workspace_account FORCE ROW LEVEL SECURITY")
    yield url
    with django_db_blocker.unblock():
        dbroles.drop_database(name)


def test_named_tables_without_a_foreign_key_are_imported_other_tables_left_and_hidden_rows_refused(
    hand_made_db, capsys
):
    with pytest.raises(CommandError, match="^No django-tenants tables were found"):
        call_command("import_django_tenants", "--database", hand_made_db)
    try:
        with pytest.raises(CommandError, match=r"^1 django-tenants tenant\(s\) were not imported \(locked\)"):
            call_command("import_django_tenants", "--database", hand_made_db, "--tenant-table", "saas.customers",
                         "--domain-table", "hosts")  # fmt: skip
        err = capsys.readouterr().err
        assert "left in the source: notes" in err
        assert "locked: refuse — its table workspace_account has row-level security that may hide rows" in err
        assert not Tenant.objects.filter(slug="locked").exists()
        shop = Tenant.objects.get(slug="shop")
        assert shop.name == "shop" and Domain.objects.filter(tenant=shop, domain="shop.example.com").exists()
        assert TenantImport.objects.get(tenant=shop).left_out == ["notes"]
        with tenant_context(shop) as alias:
            ann = Member.objects.using(alias).get()
            assert (ann.pk, ann.email) == (41, "ann@shop.test")
    finally:
        cleanup_imports()


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        (
            "mysql://root@localhost/app",
            "The --database value must be a postgres:// URL of the django-tenants database.",
        ),
        ("postgres://nobody@127.0.0.1:1/app", "Cannot connect to the django-tenants database: "),
        ("postgres://x@127.0.0.1/a\x00b", "The --database value must be a postgres:// URL"),
    ],
)
def test_a_bad_url_is_one_sentence(url, sentence):
    with pytest.raises(CommandError) as caught:
        call_command("import_django_tenants", "--database", url)
    assert str(caught.value).startswith(sentence) and "\n" not in str(caught.value)


def test_a_database_without_django_tenants_tables_is_one_sentence(tenancy_templates):
    placements.template_database_ensure()  # another module's test may have dropped it to test a rebuild
    url = owner_url(placements.template_database())  # our tables, none of django-tenants'
    with pytest.raises(CommandError, match=r"^No django-tenants tables were found: .*--domain-table\)\.$"):
        call_command("import_django_tenants", "--database", url)
    with pytest.raises(CommandError, match=r"^The tenant table “nope” is not in the django-tenants database\.$"):
        call_command("import_django_tenants", "--database", url, "--tenant-table", "nope")


def test_a_missing_database_is_named_without_the_password():
    s = connections.settings["owner"]
    url = f"postgres://{s['USER']}:s3cret-pw@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/no_such_db_here"
    with pytest.raises(CommandError, match="no_such_db_here") as caught:
        call_command("import_django_tenants", "--database", url)
    assert "s3cret-pw" not in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("schema", "slug"), [("acme", "acme"), ("Beta_Co", "beta-co"), ("42shop", "t-42shop"), ("__x__", "x")]
)
def test_schema_names_become_slugs(schema, slug):
    assert slug_for_schema(schema) == slug
