"""The saga monitor: who may see it, who may act, and what each action does (wiring; the rules
are tested on the services in test_engine.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from sagas.models import Saga, SagaState, SagaStep, StepState
from tests.factories import SagaFactory
from tests.support.personas import mfa_verify_client

pytestmark = pytest.mark.django_db


def _saga(state=SagaState.RUNNING, slug="acme", saga_type="provision.shared", **extra):
    # Actions only queue work: the test's transaction never commits, so nothing is sent anywhere.
    saga = SagaFactory(
        state=state,
        tenant_label=slug,
        saga_type=saga_type,
        steps=[("register_tenant", StepState.COMPLETED, 1), ("begin", StepState.PENDING, 1)],
        **extra,
    )
    SagaStep.objects.filter(saga=saga, name="begin").update(error="boom")
    return saga


def test_anonymous_visitors_are_sent_to_sign_in(client):
    saga = _saga()
    for url in (reverse("sagas:list"), reverse("sagas:detail", args=[saga.id])):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_non_operators_are_refused_every_page_and_action(client, outsider):
    saga = _saga()
    client.force_login(outsider)
    mfa_verify_client(client, outsider)
    assert client.get(reverse("sagas:list")).status_code == 403
    assert client.get(reverse("sagas:detail", args=[saga.id])).status_code == 403
    for action in ("retry", "cancel", "compensate"):
        assert client.post(reverse("sagas:action", args=[saga.id, action])).status_code == 403
    assert not AuditEntry.objects.filter(action__startswith="saga.").exists()


def test_a_viewer_sees_the_monitor_but_cannot_act(client, viewer):
    saga = _saga()
    client.force_login(viewer)
    mfa_verify_client(client, viewer)
    page = client.get(reverse("sagas:list"))
    assert page.status_code == 200 and b"acme" in page.content
    assert b"Retry now" not in client.get(reverse("sagas:detail", args=[saga.id])).content
    for action in ("retry", "cancel", "compensate"):
        assert client.post(reverse("sagas:action", args=[saga.id, action])).status_code == 403
    saga.refresh_from_db()
    assert saga.state == SagaState.RUNNING and saga.cancel_requested_at is None


def test_an_operator_may_retry_and_cancel_but_not_compensate(client, operator, settings):
    saga = _saga()
    client.force_login(operator)
    mfa_verify_client(client, operator)
    assert client.post(reverse("sagas:action", args=[saga.id, "compensate"])).status_code == 403
    response = client.post(reverse("sagas:action", args=[saga.id, "retry"]))
    assert response.status_code == 302
    begin = SagaStep.objects.select_related("job").get(saga=saga, name="begin")
    assert begin.max_attempts - begin.attempts == settings.SAGA_MAX_ATTEMPTS  # a fresh budget of attempts
    client.post(reverse("sagas:action", args=[saga.id, "cancel"]))
    saga.refresh_from_db()
    assert saga.state == SagaState.COMPENSATING and saga.error == f"Cancelled by {operator.username}."
    assert list(
        AuditEntry.objects.filter(action__startswith="saga.").order_by("id").values_list("action", flat=True)
    ) == ["saga.retry", "saga.cancel"]


def test_an_admin_may_compensate_and_it_is_audited(client, platform_admin):
    saga = _saga()
    client.force_login(platform_admin)
    mfa_verify_client(client, platform_admin)
    client.post(reverse("sagas:action", args=[saga.id, "compensate"]))
    saga.refresh_from_db()
    assert saga.state == SagaState.COMPENSATING
    entry = AuditEntry.objects.get(action="saga.compensate")
    assert entry.actor == platform_admin and entry.target_id == str(saga.id)


def test_actions_need_post(client, platform_admin):
    saga = _saga()
    client.force_login(platform_admin)
    mfa_verify_client(client, platform_admin)
    assert client.get(reverse("sagas:action", args=[saga.id, "retry"])).status_code == 405


def test_an_action_that_does_not_apply_says_so_in_one_sentence(client, operator):
    saga = _saga(state=SagaState.COMPLETED)
    client.force_login(operator)
    mfa_verify_client(client, operator)
    response = client.post(reverse("sagas:action", args=[saga.id, "cancel"]), follow=True)
    assert b"A completed saga cannot be cancelled." in response.content
    assert not AuditEntry.objects.filter(action__startswith="saga.").exists()


def test_the_list_filters_by_state_type_tenant_and_age(client, viewer):
    _saga(slug="alpha")
    _saga(state=SagaState.COMPENSATED, slug="bravo", saga_type="provision.schema")
    old = _saga(slug="charlie")
    Saga.objects.filter(pk=old.pk).update(created_at=timezone.now() - timezone.timedelta(days=2))
    client.force_login(viewer)
    mfa_verify_client(client, viewer)

    def shown(**params):
        content = client.get(reverse("sagas:list"), params).content.decode()
        return {slug for slug in ("alpha", "bravo", "charlie") if f"<td>{slug}</td>" in content}

    assert shown() == {"alpha", "bravo", "charlie"}
    assert shown(state="compensated") == {"bravo"}
    assert shown(type="provision.schema") == {"bravo"}
    assert shown(tenant="alp") == {"alpha"}
    assert shown(age="24h") == {"alpha", "bravo"}
    assert shown(age="older-1h") == {"charlie"}


def test_an_unknown_or_malformed_saga_id_is_a_404(client, viewer):
    client.force_login(viewer)
    mfa_verify_client(client, viewer)
    assert client.get(reverse("sagas:detail", args=["not-a-uuid"])).status_code == 404
    assert client.get(reverse("sagas:detail", args=["00000000-0000-0000-0000-000000000000"])).status_code == 404


def test_the_detail_page_polls_only_while_the_saga_is_active(client, viewer):
    running, done = _saga(), _saga(state=SagaState.COMPLETED, slug="done")
    client.force_login(viewer)
    mfa_verify_client(client, viewer)
    assert b'hx-trigger="every 1s"' in client.get(reverse("sagas:detail", args=[running.id])).content
    assert b'hx-trigger="every 1s"' not in client.get(reverse("sagas:detail", args=[done.id])).content
