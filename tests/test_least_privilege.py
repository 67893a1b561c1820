"""Database least privilege, proven against the real server: the data-plane role of tenant hosts,
the app role's trimmed grants, each dedicated database's own roles, pg_temp last, the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connections
from django.http import HttpResponse
from django.test import RequestFactory

from core import dbroles
from tenants.crypto import decrypt_json

BASE_DIR = Path(__file__).resolve().parents[1]
CONTROL_PLANE_TABLES = [
    "tenants_placement", "auth_user", "sagas_saga", "compliance_auditentry", "tenants_domain",
    "django_session", "events_event", "saas_admin_apitoken", "limits_cache", "jobs_job",
]  # fmt: skip


def connect_as(role: str, dbname: str | None = None, password: str = "") -> psycopg.Connection:
    info = dbroles.conninfo(connections.settings["owner"])
    info.update(user=role, password=password)
    if dbname:
        info["dbname"] = dbname
    info.pop("password", None) if not password else None
    return psycopg.connect(**info, autocommit=True)


@pytest.mark.django_db(databases="__all__")
def test_the_data_plane_role_cannot_read_a_single_control_plane_table(tenant_world):
    with connect_as(settings.DB_DATA_ROLE) as conn:
        for table in CONTROL_PLANE_TABLES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM public.{table} LIMIT 1")  # noqa: S608 - fixed names
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, False, False)


@pytest.mark.django_db(databases="__all__")
def test_the_data_plane_role_has_dml_on_tenant_tables_only_under_rls(tenant_world):
    a, b = tenant_world["shared"]
    schema = a.placement.schema_name
    with connect_as(settings.DB_DATA_ROLE) as conn:
        with conn.transaction():
            conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(a.pk)])
            emails = {r[0] for r in conn.execute(f'SELECT email FROM "{schema}".workspace_member')}  # noqa: S608
        assert emails and all(e.endswith(f"@{a.slug}.test") for e in emails)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f'SELECT 1 FROM "{schema}".django_migrations')  # noqa: S608
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f'DELETE FROM "{schema}".tenantlog_event')  # noqa: S608


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_request_on_a_tenants_host_runs_as_the_data_plane_role(make_tenant):
    from tenants.middleware import TenantHostMiddleware

    seen: dict[str, str] = {}

    def view(request):
        with connections[request.tenant_alias].cursor() as cursor:
            cursor.execute("SELECT current_user, current_setting('search_path')")
            seen["user"], seen["path"] = cursor.fetchone()
        return HttpResponse("ok")

    for isolation in ("shared", "dedicated"):
        tenant = make_tenant(isolation, seed=False)
        request = RequestFactory().get("/", HTTP_HOST=f"{tenant.slug}.{settings.BASE_DOMAIN}")
        assert TenantHostMiddleware(view)(request).status_code == 200
        if isolation == "dedicated":
            assert seen["user"] == decrypt_json(tenant.placement.credentials_encrypted)["app_user"]
        else:
            assert seen["user"] == settings.DB_DATA_ROLE
        assert seen["path"].endswith("pg_temp")


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_members_session_lives_in_the_tenants_placement_and_works_on_its_host_only(make_tenant):
    from django.test import Client

    from tests.support.tenancy import MEMBER_PASSWORD

    a, b = make_tenant("shared"), make_tenant("schema")
    client = Client(HTTP_HOST=f"{a.slug}.{settings.BASE_DOMAIN}")
    response = client.post("/login/", {"email": f"owner@{a.slug}.test", "password": MEMBER_PASSWORD})
    assert response.status_code == 302
    assert client.get("/members/").status_code == 200
    stolen = Client(HTTP_HOST=f"{b.slug}.{settings.BASE_DOMAIN}")
    stolen.cookies = client.cookies
    assert stolen.get("/members/").status_code == 302  # to its sign-in page: the key means nothing there
    with connect_as(settings.DB_OWNER_ROLE) as conn:
        assert conn.execute("SELECT count(*) FROM public.django_session").fetchone()[0] == 0


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_each_dedicated_database_has_its_own_roles_and_they_open_no_other(make_tenant):
    a, b = make_tenant("dedicated", seed=False), make_tenant("dedicated", seed=False)
    creds_a = decrypt_json(a.placement.credentials_encrypted)
    creds_b = decrypt_json(b.placement.credentials_encrypted)
    assert {creds_a["app_user"], creds_a["owner_user"]}.isdisjoint({creds_b["app_user"], creds_b["owner_user"]})
    assert settings.DB_APP_ROLE not in (creds_a["app_user"], creds_a["owner_user"])
    with connect_as(creds_a["app_user"], a.placement.db_name):
        pass
    for role in (creds_a["app_user"], creds_a["owner_user"], settings.DB_APP_ROLE, settings.DB_DATA_ROLE):
        with pytest.raises(psycopg.OperationalError, match="permission denied|CONNECT"):
            connect_as(role, b.placement.db_name)
    with dbroles.admin_connect(a.placement.db_name) as conn:
        owner = conn.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'workspace_member'")
        assert owner.fetchone()[0] == creds_a["owner_user"]


def _legacy_dedicated_tenant(make_tenant, monkeypatch):
    """A dedicated tenant provisioned the way it was before per-database roles: the database made
    from the template by the shared owner with the shared grants, the placement holding the shared
    credentials."""
    from tenants import placements

    def old_create(name: str, *, credentials: dict[str, str], at: object = None) -> None:
        if not placements.database_exists(name):
            placements.create_database_from_template(name)

    with monkeypatch.context() as patch:
        patch.setattr(placements, "new_dedicated_credentials", lambda db_name: placements.local_credentials())
        patch.setattr(placements, "create_dedicated_database", old_create)
        return make_tenant("dedicated")


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_repairing_an_old_dedicated_database_gives_it_its_own_roles_and_shuts_the_shared_ones_out(
    make_tenant, monkeypatch
):
    from io import StringIO

    from django.core.management import call_command

    from audit.models import AuditEntry
    from tenants.context import tenant_context
    from tenants.models import Placement
    from tenants.placements import dedicated_roles
    from workspace.models import Member

    old = _legacy_dedicated_tenant(make_tenant, monkeypatch)
    modern = make_tenant("dedicated", seed=False)
    db_name = old.placement.db_name
    with connect_as(settings.DB_APP_ROLE, db_name):
        pass  # the flaw being repaired: the shared app role opens this tenant's database
    modern_credentials = modern.placement.credentials_encrypted

    out = StringIO()
    call_command("repair_dedicated_roles", stdout=out)
    assert "repaired 1 dedicated database(s); 1 already had their own roles" in out.getvalue()

    credentials = decrypt_json(Placement.objects.get(pk=old.placement_id).credentials_encrypted)
    assert (credentials["owner_user"], credentials["app_user"]) == dedicated_roles(db_name)
    for role in (settings.DB_APP_ROLE, settings.DB_OWNER_ROLE, settings.DB_DATA_ROLE):
        with pytest.raises(psycopg.OperationalError, match="permission denied|CONNECT"):
            connect_as(role, db_name)
    with pytest.raises(psycopg.OperationalError, match="permission denied|CONNECT"):
        connect_as(credentials["app_user"], modern.placement.db_name)  # and its roles open no other
    with dbroles.admin_connect(db_name) as conn:
        owners = {r[0] for r in conn.execute("SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c "
                                               "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'")}  # fmt: skip
        assert owners == {credentials["owner_user"]}
        database_owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [db_name])
        assert database_owner.fetchone()[0] == credentials["owner_user"]
    with tenant_context(Placement.objects.get(pk=old.placement_id).tenants.get()) as alias:
        assert Member.objects.using(alias).filter(email=f"owner@{old.slug}.test").exists()  # still served
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == credentials["app_user"]
    assert AuditEntry.objects.filter(action="placement.roles_repair", target_id=str(old.placement_id)).count() == 1
    assert Placement.objects.get(pk=modern.placement_id).credentials_encrypted == modern_credentials  # untouched

    out = StringIO()
    call_command("repair_dedicated_roles", stdout=out)  # idempotent: nothing left to do
    assert "repaired 0 dedicated database(s); 2 already had their own roles" in out.getvalue()
    assert decrypt_json(Placement.objects.get(pk=old.placement_id).credentials_encrypted) == credentials


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_repair_interrupted_before_the_revokes_is_finished_by_the_next_run(make_tenant, monkeypatch):
    from django.core.management import call_command

    from tenants import dedicated_roles
    from tenants.models import Placement

    old = _legacy_dedicated_tenant(make_tenant, monkeypatch)
    db_name = old.placement.db_name

    def crash(name: str) -> None:
        raise RuntimeError("worker killed")

    with monkeypatch.context() as patch:
        patch.setattr(dedicated_roles, "_revoke_shared", crash)
        with pytest.raises(RuntimeError):
            call_command("repair_dedicated_roles")
    with connect_as(settings.DB_APP_ROLE, db_name):
        pass  # half done: the new roles exist, the shared ones still get in
    call_command("repair_dedicated_roles")
    with pytest.raises(psycopg.OperationalError, match="permission denied|CONNECT"):
        connect_as(settings.DB_APP_ROLE, db_name)
    credentials = decrypt_json(Placement.objects.get(pk=old.placement_id).credentials_encrypted)
    with connect_as(credentials["app_user"], db_name, credentials["app_password"]) as conn:
        assert conn.execute("SELECT has_table_privilege('workspace_member', 'SELECT')").fetchone()[0]


@pytest.mark.django_db(databases="__all__")
def test_search_path_ends_with_pg_temp_so_a_temporary_table_never_shadows_a_tenant_table(tenant_world):
    from tenants.context import tenant_context

    tenant = tenant_world["schema"][0]
    with tenant_context(tenant) as alias, connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_setting('search_path')")
        assert cursor.fetchone()[0].endswith("pg_temp")
        cursor.execute("CREATE TEMPORARY TABLE workspace_member (email text, tenant_id uuid)")
        cursor.execute("INSERT INTO pg_temp.workspace_member VALUES ('attacker@evil.test', %s)", [tenant.pk])
        cursor.execute("SELECT email FROM workspace_member")
        assert "attacker@evil.test" not in {row[0] for row in cursor.fetchall()}
        cursor.execute("DROP TABLE pg_temp.workspace_member")
    with connect_as(settings.DB_APP_ROLE) as conn:
        assert conn.execute("SHOW search_path").fetchone()[0].endswith("pg_temp")


@pytest.mark.django_db
def test_the_app_role_keeps_only_the_grants_it_uses():
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT has_table_privilege(current_user, 'django_migrations', 'INSERT'), "
            "has_table_privilege(current_user, 'django_migrations', 'DELETE'), "
            "has_table_privilege(current_user, 'django_migrations', 'SELECT'), "
            "has_table_privilege(current_user, 'auth_user', 'DELETE'), "
            "has_table_privilege(current_user, 'auth_user', 'UPDATE'), "
            "has_table_privilege(current_user, 'tenants_placement', 'TRUNCATE')"
        )
        assert cursor.fetchone() == (False, False, True, False, True, False)


def _manage(*args: str, key: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "saas_admin.settings.production",
        "DJANGO_SECRET_KEY": "x" * 60,
        "DJANGO_ALLOWED_HOSTS": "example.com",
        "FIELD_ENCRYPTION_KEY": key,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
    }
    return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True)


def test_an_invalid_field_encryption_key_is_one_clear_error_at_start_up():
    result = _manage("check", key="not-a-key")
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY is not a valid Fernet key" in result.stderr


def test_check_deploy_refuses_a_missing_key():
    from tenants.checks import field_encryption_key_check

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(settings, "FIELD_ENCRYPTION_KEY", "")
        assert [e.id for e in field_encryption_key_check()] == ["tenants.E001"]
        mp.setattr(settings, "FIELD_ENCRYPTION_KEY", Fernet.generate_key().decode() + ",short")
        assert [e.id for e in field_encryption_key_check()] == ["tenants.E002"]


@pytest.mark.django_db(databases="__all__")
def test_rotating_the_key_re_encrypts_every_stored_credential(settings, tenant_world):
    import base64
    import hashlib

    from django.core.management import call_command

    from tenants.models import Placement

    # From the development fallback (derived from SECRET_KEY, what the test data was written with) to a real key.
    old = base64.urlsafe_b64encode(hashlib.sha256(b"tenants.crypto:" + settings.SECRET_KEY.encode()).digest()).decode()
    new = Fernet.generate_key().decode()
    placement = tenant_world["dedicated"][0].placement
    plain = decrypt_json(placement.credentials_encrypted)
    settings.FIELD_ENCRYPTION_KEY = old
    from tenants.crypto import encrypt_json

    Placement.objects.filter(pk=placement.pk).update(credentials_encrypted=encrypt_json(plain))
    settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"
    call_command("rotate_encryption_key")
    settings.FIELD_ENCRYPTION_KEY = new
    placement.refresh_from_db()
    assert decrypt_json(placement.credentials_encrypted) == plain


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_the_signup_welcome_link_signs_the_owner_in_on_the_tenants_host_as_the_data_plane_role(make_tenant):
    """The hand-over at the end of self-signup runs on the tenant's host, where every model goes to the
    data-plane role: reading the saga there was a 500 ("permission denied for table sagas_saga")."""
    from django.test import Client

    from sagas.models import Saga
    from tenants import signup_services

    tenant = make_tenant("shared", seed=False, owner_email="ada@acme.example")
    saga = Saga.objects.get(tenant_id=tenant.pk)
    path = "/" + signup_services.welcome_url(saga).split("/", 3)[3]
    visitor = Client(HTTP_HOST=f"{tenant.slug}.{settings.BASE_DOMAIN}")
    response = visitor.get(path)
    assert response.status_code == 302 and response["Location"] == "/members/"
    assert "ada@acme.example" in visitor.get("/members/").content.decode()
    assert Client(HTTP_HOST=f"{tenant.slug}.{settings.BASE_DOMAIN}").get(path)["Location"] == "/login/"  # once
