"""Several PostgreSQL servers: the registry, placement by capacity, moves between servers, health.

A second embedded PostgreSQL (tests/support/servers.py) is registered as `pg2`; pools, own schemas
and dedicated databases are provisioned on both servers through the real sagas (jobs run in this
process by the engine), and each test checks on the servers themselves where the data went.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.db import connections
from psycopg import sql

from audit.models import AuditEntry
from core.actors import SystemActor
from core.errors import ApplicationError, InvalidInput
from tenants import migration_state, placements, server_health, servers
from tenants.context import tenant_context
from tenants.databases import unregister_alias
from tenants.models import Server, ServerStatus, Tenant
from tenants.provisioning.steps import ProvisioningError
from workspace.models import Member

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])
ACTOR = SystemActor("tests")


def forget_second_server_aliases(port: int) -> None:
    """Aliases of the second server registered by a test go with it: Django's test case guards every
    alias it finds at set-up (and un-guards it at tear-down), which a runtime alias must not meet."""
    for alias in [a for a in connections.settings if str(connections.settings[a].get("PORT")) == str(port)]:
        unregister_alias(alias.removesuffix("__owner"))


@pytest.fixture(autouse=True)
def _ready(tenancy_templates, allow_tenant_aliases, settings, second_server):
    settings.TENANCY_MOVE_PURGE_GRACE_SECONDS = 0
    forget_second_server_aliases(second_server.port)
    yield
    forget_second_server_aliases(second_server.port)


def drain(server: Server) -> None:
    servers.server_set_state(server=server, state=Server.State.DRAINING, actor=ACTOR)


def activate(server: Server) -> None:
    servers.server_set_state(server=server, state=Server.State.ACTIVE, actor=ACTOR)


def member_emails(tenant: Tenant) -> set[str]:
    tenant = Tenant.objects.select_related("placement").get(pk=tenant.pk)
    with tenant_context(tenant) as alias:
        return set(Member.objects.using(alias).values_list("email", flat=True))


def where(tenant: Tenant) -> str:
    tenant = Tenant.objects.select_related("placement__server").get(pk=tenant.pk)
    return servers.placement_server(tenant.placement).name


def test_every_level_is_provisioned_on_both_servers_and_each_tenant_sees_only_its_rows(
    make_tenant, register_second_server, second_server
):
    pg2 = register_second_server()
    default = servers.server_default()
    drain(default)
    on_pg2 = {level: make_tenant(level) for level in ("shared", "schema", "dedicated")}
    activate(default)
    drain(pg2)
    on_default = {level: make_tenant(level) for level in ("shared", "schema", "dedicated")}

    assert {where(t) for t in on_pg2.values()} == {"pg2"}
    assert {where(t) for t in on_default.values()} == {"default"}
    # On the second server itself: the pool and the schema in its tenant-data database, the database beside it.
    data_schemas = second_server.schemas(pg2.data_database)
    assert on_pg2["shared"].placement.schema_name in data_schemas
    assert on_pg2["schema"].placement.schema_name in data_schemas
    assert on_pg2["dedicated"].placement.db_name in second_server.databases()
    assert on_default["dedicated"].placement.db_name not in second_server.databases()
    for tenant in [*on_pg2.values(), *on_default.values()]:
        emails = member_emails(tenant)
        assert len(emails) == 3
        assert all(email.endswith(f"@{tenant.slug}.test") for email in emails), tenant.slug


def test_tenants_of_one_pool_on_the_second_server_never_see_each_other(make_tenant, register_second_server):
    register_second_server()
    drain(servers.server_default())
    a, b = make_tenant("shared"), make_tenant("shared")
    assert a.placement_id == b.placement_id
    assert member_emails(a).isdisjoint(member_emails(b))
    with tenant_context(a) as alias, connections[alias].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM workspace_member WHERE tenant_id = %s", [str(b.pk)])
        assert cursor.fetchone()[0] == 0


def test_a_dedicated_tenant_moves_to_the_second_server_with_its_rows(
    make_tenant, register_second_server, second_server
):
    from tenants.tests.test_moves import data_of, move_and_run, purge, with_ledger

    register_second_server()
    tenant = with_ledger(make_tenant("dedicated"))
    before = data_of(tenant)
    source_db = tenant.placement.db_name

    move = purge(move_and_run(tenant, "dedicated", server="pg2"))

    assert move.state == move.State.PURGED, move.error
    assert where(tenant) == "pg2"
    assert data_of(tenant) == before
    tenant.refresh_from_db()
    assert tenant.placement.db_name in second_server.databases()
    assert not placements.database_exists(source_db)  # the source on default was purged


def test_a_schema_tenant_moves_from_the_second_server_back_to_the_default_one(make_tenant, register_second_server):
    from tenants.tests.test_moves import data_of, move_and_run, purge, with_ledger

    pg2 = register_second_server()
    drain(servers.server_default())
    tenant = with_ledger(make_tenant("schema"))
    before = data_of(tenant)
    activate(servers.server_default())
    drain(pg2)

    move = purge(move_and_run(tenant, "schema", server="default"))

    assert move.state == move.State.PURGED, move.error
    assert where(tenant) == "default"
    assert data_of(tenant) == before


def test_a_draining_server_gets_no_new_placements(make_tenant, register_second_server):
    pg2 = register_second_server()
    drain(servers.server_default())
    first = make_tenant("shared")  # opens a pool on pg2
    drain(pg2)
    with pytest.raises(ProvisioningError, match="No active database server takes schema placements"):
        make_tenant("schema")
    activate(servers.server_default())
    second = make_tenant("shared")
    assert where(first) == "pg2"
    assert where(second) == "default"  # the pg2 pool had room, but pg2 is draining
    with pytest.raises(InvalidInput, match="pg2 is draining"):
        from tenants.moves.services import tenant_move

        tenant_move(tenant=second, to="dedicated", server="pg2", actor=ACTOR)


def test_placement_goes_to_the_emptier_server_that_takes_the_level(register_second_server):
    pg2 = register_second_server(capacity=10, takes_shared=False)
    default = servers.server_default()
    Server.objects.filter(pk=default.pk).update(capacity=5)
    assert servers.server_choose(isolation="schema").name == "pg2"
    assert servers.server_choose(isolation="shared").name == "default"  # pg2 takes no pools
    Server.objects.filter(pk=pg2.pk).update(capacity=2)
    assert servers.server_choose(isolation="dedicated").name == "default"


def hold(server: Server, n: int) -> None:
    """`n` placement rows on `server` (rows only: the placement rule counts rows)."""
    from tenants.models import Placement

    for i in range(n):
        Placement.objects.create(
            kind=Placement.Kind.SCHEMA, schema_name=f"t_held_{server.name}_{i}", **servers.location_fields(server)
        )


def test_servers_fill_in_proportion_to_their_capacities(register_second_server):
    """A small server registered next to a big default one is used: by free room alone it got nothing
    until the default server was almost full."""
    pg2 = register_second_server(capacity=10)
    default = servers.server_default()
    Server.objects.filter(pk=default.pk).update(capacity=100)
    assert servers.placement_counts().get(default.pk, 0) < 5  # a fresh database: the shares below hold

    hold(default, 2)  # default 2-6 % full, 94 or more free; pg2 empty, 10 free
    assert servers.server_choose(isolation="schema").name == "pg2"
    hold(pg2, 1)  # pg2 10 % full
    assert servers.server_choose(isolation="schema").name == "default"


def test_migrations_of_placements_on_the_second_server_run_there_and_count_against_that_server(
    make_tenant, register_second_server, second_server
):
    register_second_server()
    drain(servers.server_default())
    tenant = make_tenant("schema", seed=False)
    location = migration_state.placement_location(tenant.placement)
    assert location.server == f"127.0.0.1:{second_server.port}"
    assert location.server != migration_state.control_server()  # its own MIGRATIONS_MAX_PER_SERVER slots
    assert placements.migrate_placement(tenant.placement, plan_only=True) == []  # nothing pending there


def test_the_health_job_writes_every_server_and_the_overview_shows_it(
    register_second_server, second_server, client_for, viewer
):
    pg2 = register_second_server()
    found = server_health.servers_health_check()
    assert found == {"default": True, "pg2": True}
    status = ServerStatus.objects.get(server=pg2)
    assert status.reachable and status.max_connections and status.backends >= 1
    page = client_for(viewer).get("/")
    assert page.status_code == 200
    assert b"pg2" in page.content and f"127.0.0.1:{second_server.port}".encode() in page.content


def test_the_health_job_reports_an_unreachable_server_without_failing(register_second_server):
    pg2 = register_second_server()
    Server.objects.filter(pk=pg2.pk).update(port="1")
    assert server_health.servers_health_check()["pg2"] is False
    status = ServerStatus.objects.get(server=pg2)
    assert not status.reachable and status.error


def test_registering_a_server_that_does_not_answer_is_one_sentence_and_saves_nothing():
    servers.server_default()
    before = Server.objects.count()
    with pytest.raises(InvalidInput) as caught:
        servers.server_register(name="nowhere", host="127.0.0.1", port="1", actor=ACTOR)
    assert str(caught.value) == "Could not connect to a PostgreSQL server at 127.0.0.1:1."
    assert Server.objects.count() == before
    assert not AuditEntry.objects.filter(action="server.register").exists()


@pytest.mark.parametrize(
    "host, port, sentence",
    [
        ("db\U000f16ef.example", "5432", "The host must be a host name or an IP address"),
        ("db;drop", "5432", "The host must be a host name or an IP address"),
        ("x" * 300, "5432", "The host must be a host name or an IP address"),
        ("127.0.0.1", "\u00b2", "a port between 1 and 65535"),
        ("127.0.0.1", "70000", "a port between 1 and 65535"),
    ],
)
def test_a_host_or_port_that_can_never_resolve_is_one_sentence_and_saves_nothing(host, port, sentence):
    servers.server_default()
    before = Server.objects.count()
    with pytest.raises(InvalidInput, match=sentence):
        servers.server_register(name="odd", host=host, port=port, actor=ACTOR)
    assert Server.objects.count() == before


def test_registration_stores_the_admin_login_encrypted_and_audits_it(register_second_server):
    pg2 = register_second_server(admin_password="s3cret-pass")
    assert "s3cret-pass" not in pg2.admin_credentials_encrypted
    assert servers.server_target(pg2).admin["password"] == "s3cret-pass"
    assert AuditEntry.objects.filter(action="server.register", target_id=str(pg2.pk)).exists()


def test_a_taken_name_is_refused(register_second_server):
    register_second_server()
    with pytest.raises(InvalidInput, match="already registered"):
        register_second_server()


def server_form(**kw: Any) -> dict[str, Any]:
    return {"name": "pg2", "host": "127.0.0.1", "port": "1", "admin_user": "postgres", "admin_password": "",
            "capacity": "100", "takes_shared": "on", "takes_schema": "on", "takes_dedicated": "on", **kw}  # fmt: skip


def test_the_servers_screen_registers_a_server_for_an_admin(client_for, platform_admin, second_server):
    client = client_for(platform_admin)
    response = client.post("/tenants/servers/add/", server_form(port=str(second_server.port)))
    assert response.status_code == 302
    assert Server.objects.filter(name="pg2").exists()
    page = client.get("/tenants/servers/")
    assert b"pg2" in page.content and b"Drain" in page.content


def test_the_servers_screen_says_why_a_bad_host_was_refused(client_for, platform_admin):
    response = client_for(platform_admin).post("/tenants/servers/add/", server_form())
    assert response.status_code == 400
    content = response.content.decode()
    assert "Could not connect to a PostgreSQL server at 127.0.0.1:1." in content
    assert not Server.objects.filter(name="pg2").exists()
    # the form comes back as typed; a level box sits beside its label (not stretched under it)
    assert '<label class="checkbox"><input type="checkbox" name="takes_shared"' in content
    assert 'value="pg2"' in content


def test_an_admin_drains_a_server_from_the_screen(client_for, platform_admin, register_second_server):
    pg2 = register_second_server()
    response = client_for(platform_admin).post(f"/tenants/servers/{pg2.pk}/state/", {"state": "draining"})
    assert response.status_code == 302
    pg2.refresh_from_db()
    assert pg2.state == Server.State.DRAINING


def test_a_viewer_sees_the_servers_but_cannot_register_or_drain(client_for, viewer, second_server):
    client = client_for(viewer)
    assert client.get("/tenants/servers/").status_code == 200
    assert b"Register a server" not in client.get("/tenants/servers/").content
    assert client.post("/tenants/servers/add/", server_form(port=str(second_server.port))).status_code == 403
    default = servers.server_default()
    assert client.post(f"/tenants/servers/{default.pk}/state/", {"state": "draining"}).status_code == 403
    assert not Server.objects.filter(name="pg2").exists()
    assert Server.objects.get(pk=default.pk).state == Server.State.ACTIVE


def test_an_operator_cannot_register_or_drain_a_server(client_for, operator, second_server):
    client = client_for(operator)
    assert client.post("/tenants/servers/add/", server_form(port=str(second_server.port))).status_code == 403
    default = servers.server_default()
    assert client.post(f"/tenants/servers/{default.pk}/state/", {"state": "draining"}).status_code == 403


def test_an_outsider_cannot_see_the_servers(client_for, outsider):
    response = client_for(outsider).get("/tenants/servers/")
    assert response.status_code in (302, 403)
    assert b"Database servers" not in response.content


def test_the_api_lists_servers_and_lets_only_an_admin_register_and_drain(
    api_client_for, platform_admin, viewer, second_server
):
    body = {"name": "pg2", "host": "127.0.0.1", "port": second_server.port}
    as_viewer = api_client_for(viewer)
    assert [s["name"] for s in as_viewer.get("/api/servers/").json()] == ["default"]
    assert as_viewer.post("/api/servers/", body, content_type="application/json").status_code == 403
    as_admin = api_client_for(platform_admin)
    bad = as_admin.post("/api/servers/", {**body, "port": 1}, content_type="application/json")
    assert bad.status_code == 422 and "Could not connect" in bad.json()["detail"]
    created = as_admin.post("/api/servers/", body, content_type="application/json")
    assert created.status_code == 201, created.content
    pg2 = created.json()
    assert pg2["levels"] == ["shared", "schema", "dedicated"]
    assert not [key for key in pg2 if "admin" in key or "password" in key]  # the login never leaves the server
    assert as_viewer.post(f"/api/servers/{pg2['id']}/state", {"state": "draining"},
                          content_type="application/json").status_code == 403  # fmt: skip
    drained = as_admin.post(f"/api/servers/{pg2['id']}/state", {"state": "draining"}, content_type="application/json")
    assert drained.json()["state"] == "draining"


def change(server: Server, **kw: Any) -> Server:
    return servers.server_change(server=server, **kw, actor=ACTOR)


def test_changing_capacity_and_levels_steers_new_placements_and_is_audited(register_second_server):
    pg2 = register_second_server(capacity=10)
    default = servers.server_default()
    hold(default, 2)
    change(default, capacity=servers.placement_counts()[default.pk])  # full: takes no new placements
    assert servers.server_choose(isolation="schema").name == "pg2"
    change(pg2, takes_schema=False)
    with pytest.raises(servers.NoServerRoom):
        servers.server_choose(isolation="schema")
    change(default, capacity=100_000)
    assert servers.server_choose(isolation="schema").name == "default"  # the only one taking schemas
    assert servers.server_choose(isolation="shared").name == "pg2"  # emptier, and it still takes pools

    entry = AuditEntry.objects.filter(action="server.change", target_id=str(pg2.pk)).get()
    assert entry.details["before"] == {"capacity": 10, "levels": ["shared", "schema", "dedicated"]}
    assert entry.details["after"] == {"capacity": 10, "levels": ["shared", "dedicated"]}


@pytest.mark.parametrize(
    ("kw", "sentence"),
    [
        ({"capacity": 0}, "capacity is between 1 and 10,000,000"),
        ({"capacity": 10**12}, "capacity is between 1 and 10,000,000"),
        ({"takes_shared": False, "takes_schema": False, "takes_dedicated": False}, "at least one isolation level"),
        ({}, "already has this capacity and these levels"),
    ],
)
def test_a_bad_or_empty_change_is_one_sentence_and_changes_nothing(kw, sentence):
    default = servers.server_default()
    before = Server.objects.values().get(pk=default.pk)
    with pytest.raises(ApplicationError, match=sentence):
        change(default, **kw)
    assert Server.objects.values().get(pk=default.pk) == before
    assert not AuditEntry.objects.filter(action="server.change").exists()


def test_an_admin_changes_a_server_on_the_screen_and_a_bad_value_is_one_sentence(client_for, platform_admin):
    default = servers.server_default()
    client = client_for(platform_admin)
    page = client.get("/tenants/servers/").content.decode()
    assert f'name="s{default.pk}-capacity"' in page and ">Change</summary>" in page

    bad = client.post(f"/tenants/servers/{default.pk}/change/", {f"s{default.pk}-capacity": "-5"})
    assert bad.status_code == 400
    content = bad.content.decode()
    assert "Ensure this value is greater than or equal to 1." in content
    assert '<details class="inline-details" open>' in content  # the refused form is open, as typed
    assert Server.objects.get(pk=default.pk).capacity == default.capacity

    none = client.post(f"/tenants/servers/{default.pk}/change/", {f"s{default.pk}-capacity": "50"})
    assert none.status_code == 400 and "must take at least one isolation level" in none.content.decode()
    assert client.post("/tenants/servers/999999/change/", {"s999999-capacity": "5"}).status_code == 404

    good = client.post(
        f"/tenants/servers/{default.pk}/change/",
        {f"s{default.pk}-capacity": "1", f"s{default.pk}-takes_schema": "on"},
        follow=True,
    )
    assert good.status_code == 200
    changed = Server.objects.get(pk=default.pk)
    assert (changed.capacity, changed.levels) == (1, ["schema"])
    assert "Server default may hold 1 placement of schema." in good.content.decode()


def test_viewers_and_operators_cannot_change_a_server(client_for, viewer, operator, api_client_for):
    default = servers.server_default()
    for persona in (viewer, operator):
        response = client_for(persona).post(f"/tenants/servers/{default.pk}/change/", {f"s{default.pk}-capacity": "1"})
        assert response.status_code == 403
        api = api_client_for(persona).patch(
            f"/api/servers/{default.pk}", {"capacity": 1}, content_type="application/json"
        )
        assert api.status_code == 403
    assert Server.objects.get(pk=default.pk).capacity == default.capacity
    assert not AuditEntry.objects.filter(action="server.change").exists()


def test_the_api_changes_only_the_fields_given_and_answers_hostile_input_with_one_sentence(
    api_client_for, platform_admin
):
    default = servers.server_default()
    api = api_client_for(platform_admin)
    changed = api.patch(f"/api/servers/{default.pk}", {"capacity": 7}, content_type="application/json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["capacity"] == 7 and changed.json()["levels"] == ["shared", "schema", "dedicated"]
    for body in ({"capacity": -1}, {"capacity": 10**30}, {"capacity": "many"}, {"takes_shared": "\x00"},
                 {"capacity": [1]}, "not json"):  # fmt: skip
        response = api.patch(f"/api/servers/{default.pk}", body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
        assert response.json()["detail"].endswith(".")
    assert api.patch("/api/servers/999999", {"capacity": 3}, content_type="application/json").status_code == 404
    assert Server.objects.get(pk=default.pk).capacity == 7


def test_registering_a_server_with_an_impossible_capacity_is_one_sentence_and_saves_nothing(
    api_client_for, platform_admin, second_server
):
    body = {"name": "pg2", "host": "127.0.0.1", "port": second_server.port, "capacity": 10**12}
    response = api_client_for(platform_admin).post("/api/servers/", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["detail"].endswith(".")
    with pytest.raises(InvalidInput, match="between 1 and 10,000,000"):
        servers.server_register(name="pg2", host="127.0.0.1", port=str(second_server.port), capacity=10**12)
    assert not Server.objects.filter(name="pg2").exists()


def test_server_change_command_changes_what_it_is_given_and_refuses_bad_input_in_one_line():
    from django.core.management import CommandError, call_command

    default = servers.server_default()
    out = StringIO()
    call_command("server_change", "default", "--levels", "schema,dedicated", stdout=out)
    assert out.getvalue().strip() == f"default: capacity {default.capacity:,}, takes schema, dedicated"
    call_command("server_change", "default", "--capacity", "12", stdout=StringIO())
    changed = Server.objects.get(pk=default.pk)
    assert (changed.capacity, changed.levels) == (12, ["schema", "dedicated"])
    for args, sentence in (
        (["nosuch", "--capacity", "3"], "There is no server named nosuch."),
        (["default", "--capacity", "0"], "capacity is between 1 and 10,000,000"),
        (["default", "--levels", "shared,pools"], "--levels takes a comma-separated subset"),
        (["default", "--capacity", "12"], "already has this capacity and these levels"),
    ):
        with pytest.raises(CommandError, match=sentence):
            call_command("server_change", *args, stdout=StringIO())
    assert Server.objects.get(pk=default.pk).capacity == 12
    assert AuditEntry.objects.filter(action="server.change").count() == 2


def test_data_outside_every_placement_is_looked_for_on_the_second_server_too(
    make_tenant, register_second_server, second_server
):
    from compliance.checks.isolation import stray_data

    pg2 = register_second_server()
    drain(servers.server_default())
    tenant = make_tenant("schema", seed=False)
    with second_server.connect(pg2.data_database) as conn:
        conn.execute("CREATE SCHEMA leftover_pg2")
        conn.execute("CREATE TABLE leftover_pg2.t (id int)")
    found = {(p["database"], p["schema"]) for p in stray_data().evidence["problems"]}
    assert ("tenant data (srv_pg2)", "leftover_pg2") in found
    assert tenant.placement.schema_name not in {schema for _, schema in found}


def test_workspaces_on_the_second_server_serve_their_own_members_over_http(make_tenant, register_second_server):
    from django.test import Client

    from tests.support.tenancy import MEMBER_PASSWORD

    register_second_server()
    drain(servers.server_default())
    pooled, neighbour, own_schema = make_tenant("shared"), make_tenant("shared"), make_tenant("schema")
    for tenant, other in ((pooled, neighbour), (own_schema, pooled)):
        client = Client(HTTP_HOST=f"{tenant.slug}.localhost")
        signed_in = client.post("/login/", {"email": f"owner@{tenant.slug}.test", "password": MEMBER_PASSWORD})
        assert signed_in.status_code == 302
        page = client.get("/members/").content.decode()
        assert f"owner@{tenant.slug}.test" in page
        assert f"@{other.slug}.test" not in page


def test_a_shared_tenant_moves_to_a_pool_on_the_second_server_and_its_neighbour_stays(
    make_tenant, register_second_server, second_server
):
    from tenants.tests.test_moves import data_of, move_and_run, purge, with_ledger

    pg2 = register_second_server()
    tenant, neighbour = with_ledger(make_tenant("shared")), make_tenant("shared")
    before, neighbour_before = data_of(tenant), data_of(neighbour)

    move = purge(move_and_run(tenant, "shared", server="pg2"))

    assert move.state == move.State.PURGED, move.error
    assert where(tenant) == "pg2" and where(neighbour) == "default"
    assert data_of(tenant) == before
    assert data_of(neighbour) == neighbour_before
    tenant.refresh_from_db()
    with second_server.connect(pg2.data_database) as conn:
        rows = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.workspace_member WHERE tenant_id = %s").format(
                sql.Identifier(tenant.placement.schema_name)
            ),
            [str(tenant.pk)],
        ).fetchone()
    assert rows == (3,)  # read as the second server's superuser: the rows are really there


@pytest.mark.parametrize("isolation", ["schema", "dedicated"])
def test_deleting_a_tenant_on_the_second_server_drops_its_data_there(
    make_tenant, register_second_server, second_server, isolation
):
    from tenants.offboarding.services import tenant_delete
    from tenants.tests.test_deletion import run_deletion

    pg2 = register_second_server()
    drain(servers.server_default())
    tenant = make_tenant(isolation)
    placement = tenant.placement

    run_deletion(tenant_delete(tenant=tenant, confirm=tenant.slug, actor=ACTOR, grace_seconds=0))

    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.DELETED
    if isolation == "schema":
        assert placement.schema_name not in second_server.schemas(pg2.data_database)
    else:
        assert placement.db_name not in second_server.databases()


def test_the_scheduled_health_job_runs_on_the_job_engine(register_second_server):
    from jobs.models import Job
    from jobs.services import job_execute
    from tenants.tasks import servers_health_scheduled

    register_second_server()
    job_id = servers_health_scheduled()
    assert servers_health_scheduled() == job_id  # one open at a time: the schedule never piles them up
    job_execute(job_id=job_id)
    job = Job.objects.get(pk=job_id)
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result == {"servers": {"default": True, "pg2": True}}
    assert ServerStatus.objects.filter(server__name="pg2", reachable=True).exists()


def test_a_migration_missing_in_a_schema_on_the_second_server_is_seen_there(make_tenant, register_second_server):
    from migration_runs import plans

    register_second_server()
    drain(servers.server_default())
    tenant = make_tenant("schema", seed=False)
    schema = sql.Identifier(tenant.placement.schema_name)
    with placements.owner_connect(autocommit=True, at=servers.placement_target(tenant.placement)) as conn:
        last = conn.execute(
            sql.SQL("SELECT name FROM {}.django_migrations WHERE app = 'workspace' ORDER BY id DESC LIMIT 1").format(
                schema
            )
        ).fetchone()[0]
        conn.execute(sql.SQL("DELETE FROM {}.django_migrations WHERE app = 'workspace' AND name = %s").format(schema),
                     [last])  # fmt: skip
    # The executor of one placement and the runs' bulk reader both read the schema on the second server.
    assert placements.migrate_placement(tenant.placement, plan_only=True) == [("workspace", last)]
    (status,) = plans.status([migration_state.placement_location(tenant.placement)])
    assert status.pending == [("workspace", last)] and not status.error


def test_the_control_planes_own_server_cannot_be_registered_twice():
    owner = connections.settings["owner"]
    with pytest.raises(InvalidInput, match="already registered"):
        servers.server_register(name="again", host=owner.get("HOST") or "localhost",
                                port=str(owner.get("PORT") or 5432), actor=ACTOR)  # fmt: skip
    assert not Server.objects.filter(name="again").exists()
