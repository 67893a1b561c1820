"""Each check has a passing and a failing case built on the real database (checks that read
placements are in test_placement_checks.py)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.actions import AuditAction
from audit.models import AuditEntry
from audit.services import audit_record
from compliance import registers, services
from compliance.checks import registry
from compliance.models import Incident
from core import dbroles
from core.actors import SystemActor
from core.permissions import Role
from events.services import control_event_append
from jobs.models import Job
from migration_runs.models import MigrationRun
from privacy.models import RequestKind, RequestStatus, RetentionCategory, RetentionPolicy, SubjectRequest
from privacy.retention import KIND as RETENTION_KIND
from tenants.crypto import encrypt_json
from tenants.models import Placement, Tenant, TenantExport
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

ALL_CHECKS = [
    "mfa_enrolled", "privileged_roles", "access_review", "stale_access", "rls_forced", "runtime_roles",
    "encryption_at_rest", "transport_security", "event_chains", "audit_retention", "signin_review",
    "change_management", "schema_drift", "backups_rpo", "dsar_sla", "retention_holds", "processing_record",
    "incidents_notified", "stray_data",
]  # fmt: skip


def test_all_nineteen_checks_are_registered_and_say_what_they_prove():
    for name in ALL_CHECKS:
        assert registry.get(name) is not None, name
        assert len(registry.proves(name)) > 40, name


def test_a_check_without_a_docstring_is_refused():
    with pytest.raises(TypeError):
        registry.check("undocumented_check")(lambda: registry.Outcome.passed("ok"))


# --- 1 MFA ---------------------------------------------------------------------------------------------


def test_mfa_passes_when_every_operator_has_an_app_or_passkey(make_operator, run_check):
    for role in Role:
        user = make_operator(role)
        TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    assert run_check("mfa_enrolled").status == "pass"


def test_mfa_fails_naming_the_admin_with_only_recovery_codes(make_operator, run_check):
    ok = make_operator(Role.OPERATOR)
    TOTPDevice.objects.create(user=ok, name="app", confirmed=True)
    admin = make_operator(Role.ADMIN, "adam_nofactor")
    StaticDevice.objects.create(user=admin, name="recovery", confirmed=True)
    TOTPDevice.objects.create(user=admin, name="unconfirmed", confirmed=False)
    outcome = run_check("mfa_enrolled")
    assert outcome.status == "fail"
    assert outcome.evidence["problems"] == [{"username": "adam_nofactor", "role": "Admin"}]
    assert outcome.evidence["admins_missing"] == 1


# --- 2 privileged roles --------------------------------------------------------------------------------


def test_privileged_roles_pass_when_each_grant_is_audited(platform_admin, run_check):
    from saas_admin.services import operator_create

    operator_create(actor=platform_admin, username="granted_op", email="g@example.test", role=Role.OPERATOR)
    audit_record(
        actor=SystemActor("bootstrap"),
        action=AuditAction.OPERATOR_CREATE,
        target_type="user",
        target_id=platform_admin.pk,
        details={"role": "Admin"},
    )
    outcome = run_check("privileged_roles")
    assert outcome.status == "pass", outcome.evidence
    inventory = {row["username"]: row for row in outcome.evidence["inventory"]}
    assert inventory["granted_op"]["granted"].startswith(platform_admin.username)


def test_privileged_roles_fail_for_an_admin_nobody_granted(make_operator, run_check):
    make_operator(Role.ADMIN, "sneaky_admin")  # made directly, as `createsuperuser` or a shell would
    outcome = run_check("privileged_roles")
    assert outcome.status == "fail"
    assert outcome.evidence["problems"][0] == {"username": "sneaky_admin", "role": "Admin", "superuser": False}


# --- 3 access review -----------------------------------------------------------------------------------


def test_access_review_fails_until_one_completes_and_admins_never_review_themselves(make_operator, run_check):
    first, second = make_operator(Role.ADMIN, "admin_one"), make_operator(Role.ADMIN, "admin_two")
    viewer = make_operator(Role.VIEWER, "vic_viewer")
    assert run_check("access_review").status == "fail"
    review = registers.review_start(actor=first)
    from core.errors import Conflict, Forbidden

    with pytest.raises(Forbidden):
        registers.review_decide(review=review, operator_id=first.pk, decision="confirmed", actor=first)
    registers.review_decide(review=review, operator_id=second.pk, decision="confirmed", actor=first)
    registers.review_decide(review=review, operator_id=first.pk, decision="confirmed", actor=second)
    with pytest.raises(Conflict):
        registers.review_complete(review=review, actor=first)  # the viewer is still pending
    registers.review_decide(review=review, operator_id=viewer.pk, decision="revoked", actor=second)
    registers.review_complete(review=review, actor=first)
    viewer.refresh_from_db()
    assert not viewer.groups.filter(name__in=["Viewer", "Operator", "Admin"]).exists()
    assert run_check("access_review").status == "pass"
    make_operator(Role.OPERATOR, "new_since_review")
    outcome = run_check("access_review")
    assert outcome.status == "fail" and outcome.evidence["not_covered"] == ["new_since_review"]


def test_access_review_older_than_its_period_fails(make_operator, run_check):
    admin, other = make_operator(Role.ADMIN), make_operator(Role.ADMIN)
    review = registers.review_start(actor=admin)
    registers.review_decide(review=review, operator_id=other.pk, decision="confirmed", actor=admin)
    registers.review_decide(review=review, operator_id=admin.pk, decision="confirmed", actor=other)
    registers.review_complete(review=review, actor=admin)
    review.refresh_from_db()
    type(review).objects.filter(pk=review.pk).update(
        completed_at=timezone.now() - timedelta(days=settings.COMPLIANCE_ACCESS_REVIEW_DAYS + 1)
    )
    assert "more than" in run_check("access_review").summary


# --- 4 stale access ------------------------------------------------------------------------------------


def test_stale_access_flags_inactive_operators_and_tokens_without_expiry(make_operator, api_token_for, run_check):
    fresh = make_operator(Role.OPERATOR, "fresh_op")
    fresh.last_login = timezone.now()
    fresh.save()
    assert run_check("stale_access").status == "pass"
    api_token_for(fresh)  # the persona helper makes tokens without expiry
    old = make_operator(Role.VIEWER, "dormant_viewer")
    old.last_login = timezone.now() - timedelta(days=settings.COMPLIANCE_INACTIVE_DAYS + 5)
    old.save()
    outcome = run_check("stale_access")
    assert outcome.status == "fail"
    assert [i["username"] for i in outcome.evidence["inactive"]] == ["dormant_viewer"]
    assert outcome.evidence["tokens"][0]["problem"] == "no expiry"


# --- 7 encryption at rest ------------------------------------------------------------------------------


def test_encryption_at_rest_fails_for_plain_credentials_and_a_derived_key(settings, run_check):
    settings.DEBUG = False
    settings.FIELD_ENCRYPTION_KEY = ""
    outcome = run_check("encryption_at_rest")
    assert outcome.status == "fail" and "derived from SECRET_KEY" in outcome.summary
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    good = Placement.objects.create(kind="database", schema_name="public", database_alias="tdb_x", db_name="x")
    Placement.objects.filter(pk=good.pk).update(credentials_encrypted=encrypt_json({"app_user": "a"}))
    assert run_check("encryption_at_rest").status == "pass"
    Placement.objects.create(
        kind="database",
        schema_name="public",
        database_alias="tdb_y",
        db_name="y",
        credentials_encrypted='{"app_user": "a"}',
    )
    outcome = run_check("encryption_at_rest")
    assert outcome.status == "fail" and "plain JSON" in outcome.summary


# --- 8 transport -----------------------------------------------------------------------------------------


def test_transport_security_fails_without_https_settings(settings, run_check):
    settings.SECURE_SSL_REDIRECT = False
    outcome = run_check("transport_security")
    assert outcome.status == "fail"
    assert {"what": "SECURE_SSL_REDIRECT", "problem": "off"} in outcome.evidence["problems"]
    assert {s["alias"] for s in outcome.evidence["sessions"]} == {"default", "owner"}


def test_transport_security_fails_when_tls_is_required_but_not_used(settings, run_check):
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        if cursor.fetchone()[0]:
            pytest.skip("this server uses TLS; the failing case needs one that does not")
    connections.settings["default"].setdefault("OPTIONS", {})["sslmode"] = "require"
    try:
        problems = run_check("transport_security").evidence["problems"]
    finally:
        connections.settings["default"]["OPTIONS"].pop("sslmode")
    assert {"what": "database alias default", "problem": "sslmode=require but the session is not TLS"} in problems


def test_transport_security_passes_with_production_like_settings(settings, run_check):
    settings.SECURE_SSL_REDIRECT = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = settings.SECURE_HSTS_PRELOAD = True
    settings.SECRET_KEY = "k3-Qz8!vLp0#Wm2$Rt7&Yx5*Nb1@Hc4^Jd6(Fg9)Se" * 2
    settings.DEBUG = False
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    outcome = run_check("transport_security")
    assert outcome.status == "pass", outcome.evidence["problems"]


# --- 10 audit retention ------------------------------------------------------------------------------


def _owner_execute(statement: str) -> None:
    info = dbroles.conninfo(connections.settings["owner"])
    with psycopg.connect(**info, autocommit=True) as conn:
        conn.execute(statement)


def test_audit_retention_passes_when_the_trail_is_append_only(run_check):
    audit_record(actor=SystemActor("tests"), action=AuditAction.AUDIT_EXPORT)
    outcome = run_check("audit_retention")
    assert outcome.status == "pass" and outcome.evidence["privileges"] == {
        "insert": True, "update": False, "delete": False, "truncate": False
    }  # fmt: skip


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_audit_retention_fails_when_the_runtime_role_may_delete_entries(run_check):
    # Transactional: inside one long transaction PostgreSQL answers privilege questions from its cache
    # (an evaluation runs each check in autocommit, as here).
    role = settings.DB_APP_ROLE
    _owner_execute(f'GRANT DELETE ON compliance_auditentry TO "{role}"')
    try:
        outcome = run_check("audit_retention")
    finally:
        _owner_execute(f'REVOKE DELETE ON compliance_auditentry FROM "{role}"')
    assert outcome.status == "fail" and "may DELETE" in outcome.summary


# --- 11 failed sign-ins ------------------------------------------------------------------------------


def test_a_spike_of_failed_sign_ins_fails_until_an_admin_reviews_it(platform_admin, settings, run_check):
    settings.COMPLIANCE_SIGNIN_SPIKE = 5
    two_hours_ago = timezone.now() - timedelta(hours=2)
    for _ in range(6):  # the trail is INSERT-only: the failures are written with their time
        AuditEntry.objects.create(
            occurred_at=two_hours_ago, actor_label="sign-in mallory", action=AuditAction.AUTH_LOGIN_FAILED
        )
    outcome = run_check("signin_review")
    assert outcome.status == "fail"
    assert outcome.evidence["problems"][0]["who"] == "sign-in mallory"
    services.signin_review_record(actor=platform_admin, note="password spraying from one address, blocked")
    assert run_check("signin_review").status == "pass"


# --- 12 change management --------------------------------------------------------------------------


def _run(number: int, by, approved_by=None, status=MigrationRun.Status.COMPLETED) -> MigrationRun:
    return MigrationRun.objects.create(
        number=number,
        status=status,
        created_by=by,
        created_by_label=by.username,
        approved_by=approved_by,
        approved_at=timezone.now() if approved_by else None,
    )


def test_change_management_needs_a_dry_run_before_each_run_and_a_second_approver(make_operator, run_check):
    alice, bob = make_operator(Role.ADMIN, "alice_a"), make_operator(Role.ADMIN, "bob_b")
    control_event_append(
        aggregate_type="migration_plan",
        aggregate_id="dry_runs",
        event_type="MigrationDryRun",
        data={},
        expected_version=None,
    )
    _run(9001, alice, approved_by=bob)
    assert run_check("change_management").status == "pass"
    _run(9002, alice)  # no dry run since the previous run
    outcome = run_check("change_management")
    assert outcome.status == "fail" and outcome.evidence["problems"] == [
        {"run": 9002, "problem": "no dry run before it"}
    ]


def test_change_management_fails_when_the_trigger_approved_their_own_run(make_operator, run_check):
    alice = make_operator(Role.ADMIN)
    control_event_append(
        aggregate_type="migration_plan",
        aggregate_id="dry_runs",
        event_type="MigrationDryRun",
        data={},
        expected_version=None,
    )
    _run(9003, alice, approved_by=alice)
    outcome = run_check("change_management")
    assert outcome.evidence["problems"] == [{"run": 9003, "problem": "approved by the operator who triggered it"}]


# --- 14–16: backups, requests, retention -------------------------------------------


def test_backups_fail_for_an_active_tenant_without_an_export_and_pass_with_a_recent_one(run_check, settings, tmp_path):
    settings.TENANCY_EXPORTS_DIR = str(tmp_path)
    tenant = TenantFactory(status=Tenant.Status.ACTIVE, plan="team")
    outcome = run_check("backups_rpo")
    assert outcome.status == "fail" and outcome.evidence["problems"][0]["tenant"] == tenant.slug
    old = TenantExport.objects.create(
        tenant=tenant,
        reason="scheduled",
        state="done",
        file_name="old.zip",
        finished_at=timezone.now() - timedelta(hours=25),
    )
    (tmp_path / "old.zip").write_bytes(b"x")
    assert run_check("backups_rpo").status == "fail", "older than the team plan's 24 h"
    TenantExport.objects.create(tenant=tenant, reason="on_demand", state="failed", finished_at=timezone.now())
    TenantExport.objects.create(
        tenant=tenant, reason="on_demand", state="done", file_name="gone.zip", finished_at=timezone.now()
    )
    assert run_check("backups_rpo").status == "fail", "a failed export or one whose file is gone does not count"
    TenantExport.objects.filter(pk=old.pk).update(finished_at=timezone.now())
    assert run_check("backups_rpo").status == "pass"


def test_data_subject_requests_fail_when_overdue_late_or_unproven(run_check):
    tenant = TenantFactory()
    now = timezone.now()
    on_time = SubjectRequest.objects.create(
        kind=RequestKind.ACCESS, tenant=tenant, subject_ref="a" * 64, status=RequestStatus.COMPLETED,
        opened_at=now - timedelta(days=3), due_at=now + timedelta(days=27), completed_at=now - timedelta(days=1),
    )  # fmt: skip
    assert run_check("dsar_sla").status == "pass"
    overdue = SubjectRequest.objects.create(
        kind=RequestKind.ACCESS, tenant=tenant, subject_ref="b" * 64, opened_at=now - timedelta(days=31),
        due_at=now - timedelta(days=1),
    )  # fmt: skip
    erased = SubjectRequest.objects.create(
        kind=RequestKind.ERASURE, tenant=tenant, subject_ref="c" * 64, status=RequestStatus.COMPLETED,
        opened_at=now - timedelta(days=2), due_at=now + timedelta(days=28), completed_at=now,
    )  # fmt: skip
    outcome = run_check("dsar_sla")
    assert outcome.status == "fail" and outcome.evidence["problems"] == [
        {"id": str(overdue.pk), "problem": "open past its due date"},
        {"id": str(erased.pk), "problem": "erasure without a verified proof"},
    ]
    assert str(on_time.pk) not in str(outcome.evidence["problems"])


def test_retention_fails_until_every_enabled_policy_ran(run_check):
    RetentionPolicy.objects.all().delete()
    assert run_check("retention_holds").status == "fail"  # no policy: nothing shows deletion on time
    RetentionPolicy.objects.create(category=RetentionCategory.values[0], days=30)
    assert run_check("retention_holds").status == "fail"
    now = timezone.now()
    Job.objects.create(
        kind=RETENTION_KIND, state="succeeded", finished_at=now, max_attempts=1, created_at=now, updated_at=now,
        payload={"category": RetentionCategory.values[0]}, result={"purged": 4, "held": 2},
    )  # fmt: skip
    outcome = run_check("retention_holds")
    assert outcome.status == "pass" and outcome.evidence["jobs"][RetentionCategory.values[0]]["held"] == 2


# --- 17 record of processing ---------------------------------------------------------------------------


def test_processing_record_fails_naming_a_personal_field_it_does_not_declare(monkeypatch, run_check):
    assert run_check("processing_record").status == "pass"
    from core import personal_data

    monkeypatch.delitem(personal_data._PERSONAL, ("model", "workspace.Member", "email"))
    outcome = run_check("processing_record")
    assert outcome.status == "fail" and outcome.evidence["problems"] == ["workspace.Member.email"]


# --- 18 incidents --------------------------------------------------------------------------------------


def test_incidents_must_be_notified_within_72_hours(operator, run_check):
    assert run_check("incidents_notified").status == "pass"
    incident = registers.incident_record(
        actor=operator, title="Leaked backup", detected_at=timezone.now() - timedelta(hours=80), notifiable=True
    )
    outcome = run_check("incidents_notified")
    assert outcome.status == "fail" and outcome.evidence["problems"] == [
        {"id": incident.pk, "problem": "not notified after 72 hours"}
    ]
    registers.incident_update(incident=incident, actor=operator, notified_at=timezone.now() - timedelta(hours=70))
    assert run_check("incidents_notified").status == "pass"
    Incident.objects.create(
        title="Late",
        detected_at=timezone.now() - timedelta(hours=200),
        notified_at=timezone.now(),
        created_by_label="x",
    )
    assert run_check("incidents_notified").evidence["problems"][0]["problem"] == "notified later than 72 hours"


# --- 9 event chains (control plane; tenant logs: test_placement_checks.py) ----------------------------


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_event_chains_verify_incrementally_and_name_a_tampered_new_event(run_check):
    first = run_check("event_chains")
    assert first.status == "pass", first.evidence["broken"]
    event = control_event_append(aggregate_type="probe", aggregate_id="chain", event_type="Probed", data={"n": 1})
    with dbroles.admin_connect(settings.DATABASES["owner"]["NAME"]) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE events_event SET event_data = '{\"n\": 2}' WHERE event_id = %s", [event.event_id])
    outcome = run_check("event_chains")
    control = next(entry for entry in outcome.evidence["per_log"] if entry["log"] == "control")
    assert not control["full"] and control["checked"] >= 1  # only what came after the checkpoint
    assert outcome.status == "fail"
    assert outcome.evidence["broken"][0] == {
        "log": "control", "event_id": event.event_id, "stream": "probe/chain", "version": 1, "problem": "hash mismatch"
    }  # fmt: skip
    assert f"event {event.event_id}" in outcome.summary
