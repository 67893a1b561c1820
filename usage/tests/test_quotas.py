"""Plan quotas refused in the workspace with one sentence, per-plan database limits inside the tenant's
transaction, the per-tenant request limit, and 80 % / 100 % warnings (operators, owner email, webhook event)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connections
from django.test import Client
from django.utils import timezone

from events.models import Event
from events.tenantlog.models import TenantEvent
from jobs.models import Job
from jobs.services import job_execute
from tenants.context import tenant_context
from tests.factories import TenantFactory
from usage import collection, services
from usage.models import QuotaWarning, UsageState
from workspace import ledger
from workspace import services as workspace
from workspace.models import Account, Member

pytestmark = pytest.mark.django_db(databases="__all__")

SMALL = {"members": 4, "storage_bytes": 1000, "requests_per_minute": 3, "events_per_day": 2}


@pytest.fixture
def small_plan(settings):
    settings.USAGE_PLAN_QUOTAS = {**settings.USAGE_PLAN_QUOTAS, "free": SMALL}
    settings.USAGE_PLAN_DB_SETTINGS = {"free": {"statement_timeout": "1234ms", "work_mem": "3MB"}}


def as_free(tenant):
    tenant.plan = "free"
    tenant.save(update_fields=["plan"])
    return tenant


def test_the_member_quota_refuses_with_one_sentence(tenant_world, small_plan):
    tenant = as_free(tenant_world["schema"][0])
    with tenant_context(tenant) as alias:
        existing = Member.objects.using(alias).count()
        for i in range(SMALL["members"] - existing):
            workspace.member_create(name=f"extra {i}", email=f"extra{i}@q.test")
        with pytest.raises(ValidationError) as refused:
            workspace.member_create(name="one too many", email="late@q.test")
        assert Member.objects.using(alias).count() == SMALL["members"]
    assert refused.value.messages == ["Your plan allows 4 members; remove a member or upgrade the plan to add another."]


def test_the_events_per_day_quota_refuses_ledger_operations(tenant_world, small_plan, settings):
    tenant = as_free(tenant_world["shared"][0])
    with tenant_context(tenant) as alias:
        account = Account.objects.using(alias).order_by("pk").first()
        assert account is not None
        start = dt.datetime.combine(timezone.now().date(), dt.time.min, tzinfo=dt.UTC)
        today = TenantEvent.objects.using(alias).filter(occurred_at__gte=start).count()  # members joining, …
        limit = today + 1  # room for one deposit's event, not for a second
        settings.USAGE_PLAN_QUOTAS = {**settings.USAGE_PLAN_QUOTAS, "free": {**SMALL, "events_per_day": limit}}
        ledger.ledger_deposit(account_id=account.pk, amount="1.00")
        with pytest.raises(ValidationError, match=f"{limit} ledger operations per day"):
            ledger.ledger_deposit(account_id=account.pk, amount="1.00")
        account.refresh_from_db(using=alias)
        assert str(account.balance).endswith("1.00")


def test_the_storage_quota_uses_the_collectors_last_figure(tenant_world, small_plan):
    tenant = as_free(tenant_world["dedicated"][0])
    assert tenant.placement is not None
    with tenant_context(tenant):
        workspace.account_open(name="Fits")
    collection.collect(tenant_ids=[tenant.pk])  # a whole database is far over the 1000 bytes of SMALL
    tenant.refresh_from_db()
    assert tenant.quotas_exceeded == ["storage_bytes"]
    with tenant_context(tenant), pytest.raises(ValidationError, match="used its 1000 bytes of storage"):
        workspace.account_open(name="Over the limit")

    tenant.plan = "enterprise"  # unlimited: the next collection lifts the mark
    tenant.save(update_fields=["plan"])
    collection.collect(tenant_ids=[tenant.pk])
    tenant.refresh_from_db()
    assert tenant.quotas_exceeded == []
    with tenant_context(tenant):
        workspace.account_open(name="Fits again")


def test_plan_limits_apply_inside_the_tenant_transaction_only(tenant_world, small_plan):
    tenant = as_free(tenant_world["shared"][1])
    with connections["default"].cursor() as c:
        c.execute("SHOW statement_timeout")
        before = c.fetchone()[0]
    with tenant_context(tenant, data_plane=True) as alias, connections[alias].cursor() as c:
        c.execute("SHOW statement_timeout")
        assert c.fetchone()[0] == "1234ms"
        c.execute("SHOW work_mem")
        assert c.fetchone()[0] == "3MB"
    with connections["default"].cursor() as c:
        c.execute("SHOW statement_timeout")
        assert c.fetchone()[0] == before
    with tenant_context(tenant) as alias, connections[alias].cursor() as c:  # operator work: server defaults
        c.execute("SHOW statement_timeout")
        assert c.fetchone()[0] == before


def test_a_tenant_over_its_request_rate_gets_429(tenant_world, small_plan):
    tenant = as_free(tenant_world["schema"][1])
    if time.time() % 60 > 55:  # the limit counts per clock minute: don't straddle two
        time.sleep(60 - time.time() % 60 + 0.1)
    client = Client(HTTP_HOST=f"{tenant.slug}.localhost")
    codes = [client.get("/login/").status_code for _ in range(SMALL["requests_per_minute"] + 1)]
    assert codes[:-1] == [200] * SMALL["requests_per_minute"]
    assert codes[-1] == 429
    refused = client.get("/login/")
    assert "requests per minute" in refused.content.decode() and int(refused["Retry-After"]) <= 60
    # Another tenant is not slowed down by its neighbour.
    other = tenant_world["schema"][0]
    assert Client(HTTP_HOST=f"{other.slug}.localhost").get("/login/").status_code == 200


def test_warnings_at_80_and_100_percent_happen_once_with_an_email(settings, small_plan):
    tenant = TenantFactory(plan="free", owner_email="owner@warned.test")
    UsageState.objects.create(tenant=tenant, members=4, storage_bytes=850, collected_at=timezone.now())

    raised = services.quota_warnings_raise(tenant_ids=[tenant.pk])
    again = services.quota_warnings_raise(tenant_ids=[tenant.pk])

    assert {(w.quota, w.level) for w in raised} == {("members", 80), ("members", 100), ("storage_bytes", 80)}
    assert again == []
    assert Event.objects.filter(event_type="QuotaWarningRaised", aggregate_id=str(tenant.pk)).count() == 3
    jobs = Job.objects.filter(kind="usage.quota_email")
    assert jobs.count() == 3
    for job in jobs:
        job_execute(job_id=job.pk, heartbeat=False)
    assert len(mail.outbox) == 3 and mail.outbox[0].to == ["owner@warned.test"]
    assert any("has reached" in m.subject for m in mail.outbox)
    assert not QuotaWarning.objects.filter(emailed_at__isnull=True).exists()


def test_a_runaway_query_on_the_tenants_host_is_cancelled_by_its_plans_timeout(tenant_world, settings):
    from django.db import OperationalError

    settings.USAGE_PLAN_DB_SETTINGS = {"free": {"statement_timeout": "200ms"}}
    tenant = as_free(tenant_world["schema"][0])
    started = time.monotonic()
    with pytest.raises(OperationalError, match="statement timeout"):
        with tenant_context(tenant, data_plane=True) as alias, connections[alias].cursor() as c:
            c.execute("SELECT pg_sleep(5)")
    assert time.monotonic() - started < 4
