"""Workspace members' accounts on tenant hosts: sign-in lockout, invitations, roles, removal, password reset.

Real tenants of every isolation level (tests/support/tenancy.py); emails land in pytest-django's
`mailoutbox`. The lockout is also proven once with the real data-plane role (transactional tests).
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client

from events.tenantlog.models import TenantEvent
from tenants.context import tenant_context
from tests.support.tenancy import ISOLATIONS, MEMBER_PASSWORD
from workspace import services
from workspace.models import Member, MemberSession

pytestmark = pytest.mark.django_db(databases="__all__")

NEW_PASSWORD = "a-brand-new-password-7"
LINK = re.compile(r"https?://(?P<host>[^/\s]+)(?P<path>/set-password/[^/\s]+/)")


def host(tenant) -> str:
    return f"{tenant.slug}.{settings.BASE_DOMAIN}"


def client_for(tenant, address: str = "10.0.0.1") -> Client:
    return Client(HTTP_HOST=host(tenant), REMOTE_ADDR=address)


def sign_in(tenant, email: str, password: str = MEMBER_PASSWORD, address: str = "10.0.0.1") -> Client:
    client = client_for(tenant, address)
    response = client.post("/login/", {"email": email, "password": password})
    assert response.status_code == 302, response.content.decode()[:500]
    return client


def owner(tenant) -> str:
    return f"owner@{tenant.slug}.test"


def link_in(mail) -> tuple[str, str]:
    found = LINK.search(mail.body)
    assert found, mail.body
    return found["host"], found["path"]


def member(tenant, email: str) -> Member | None:
    with tenant_context(tenant):
        return Member.objects.filter(email=email).first()


def log_events(tenant, event_type: str) -> list:
    with tenant_context(tenant):
        return list(TenantEvent.objects.filter(event_type=event_type).order_by("event_id"))


# --- sign-in lockout ------------------------------------------------------------------------------


@pytest.fixture
def strict_lockout(settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_FAILURE_FREE = 100  # no progressive delay: these tests are about the lock itself
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 600


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_wrong_passwords_lock_the_account_from_that_address_and_the_tenant_log_records_it(
    tenant_world, strict_lockout, isolation
):
    tenant = tenant_world[isolation][0]
    attacker = client_for(tenant, "203.0.113.9")
    for _ in range(5):
        assert attacker.post("/login/", {"email": owner(tenant), "password": "guess"}).status_code == 401
    # The right password no longer helps from that address: refused before it is checked.
    response = attacker.post("/login/", {"email": owner(tenant), "password": MEMBER_PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins for this account from your network address" in response.content.decode()
    # The owner elsewhere is not locked out by the attacker.
    sign_in(tenant, owner(tenant), address="198.51.100.20")
    locked = log_events(tenant, "member.signin_locked")
    assert len(locked) == 1 and locked[0].event_data["failures"] == 5
    assert owner(tenant) not in str(locked[0].event_data)  # personal data is encrypted in the log
    # Another tenant's log knows nothing of it, and its same-named account is not locked.
    other = tenant_world[isolation][1]
    assert log_events(other, "member.signin_locked") == []


def test_an_admin_sees_a_locked_member_and_unlocks_them(tenant_world, strict_lockout):
    tenant = tenant_world["schema"][0]
    email = f"m1@{tenant.slug}.test"
    attacker = client_for(tenant, "203.0.113.30")
    for _ in range(5):
        attacker.post("/login/", {"email": email, "password": "guess"})
    admin = sign_in(tenant, owner(tenant))
    pk = member(tenant, email).pk
    page = admin.get(f"/members/{pk}/").content.decode()
    assert "Locked" in page and "Unlock sign-in" in page
    assert sign_in(tenant, email, address="198.51.100.1")  # elsewhere it was never locked
    plain = sign_in(tenant, f"m0@{tenant.slug}.test")
    assert plain.post(f"/members/{pk}/unlock/").status_code == 403
    assert attacker.post("/login/", {"email": email, "password": MEMBER_PASSWORD}).status_code == 429
    response = admin.post(f"/members/{pk}/unlock/", follow=True)
    assert "may sign in again from every address" in response.content.decode()
    assert attacker.post("/login/", {"email": email, "password": MEMBER_PASSWORD}).status_code == 302
    assert len(log_events(tenant, "member.unlocked")) == 1
    response = admin.post(f"/members/{pk}/unlock/", follow=True)
    assert "is not locked out" in response.content.decode()


def test_the_lockout_is_per_tenant_even_for_the_same_email_in_a_shared_pool(tenant_world, strict_lockout):
    a, b = tenant_world["shared"]
    with tenant_context(b):
        services.member_create(name="Twin", email=owner(a), password=MEMBER_PASSWORD)
    attacker = client_for(a, "203.0.113.9")
    for _ in range(5):
        attacker.post("/login/", {"email": owner(a), "password": "guess"})
    assert attacker.post("/login/", {"email": owner(a), "password": MEMBER_PASSWORD}).status_code == 429
    sign_in(b, owner(a), address="203.0.113.9")  # same email, same address, other workspace


def test_failures_after_the_free_ones_make_the_next_try_wait(tenant_world, settings):
    settings.LOGIN_FAILURE_FREE = 2
    settings.LOGIN_FAILURE_LIMIT = 10
    tenant = tenant_world["schema"][1]
    client = client_for(tenant, "203.0.113.10")
    for _ in range(2):
        assert client.post("/login/", {"email": owner(tenant), "password": "guess"}).status_code == 401
    response = client.post("/login/", {"email": owner(tenant), "password": MEMBER_PASSWORD})
    assert response.status_code == 429 and "try again in 1 second" in response.content.decode()


def test_thirty_wrong_passwords_are_not_all_tried(tenant_world):
    tenant = tenant_world["dedicated"][0]
    client = client_for(tenant, "203.0.113.11")
    statuses = [client.post("/login/", {"email": owner(tenant), "password": f"x{i}"}).status_code for i in range(30)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses.count(429) >= 20  # the progressive delay refuses most of them unchecked
    assert client.post("/login/", {"email": owner(tenant), "password": MEMBER_PASSWORD}).status_code == 429


@pytest.mark.parametrize(
    "data",
    [
        {"email": "a\x00b@example.test", "password": "x"},
        {"email": "a" * 300 + "@example.test", "password": "x"},
        {"email": "ok@example.test", "password": "x" * 5000},
        {"email": ["x"], "password": "y"},
    ],
)
def test_hostile_sign_in_input_gets_a_sentence_not_a_500(tenant_world, data):
    response = client_for(tenant_world["shared"][0]).post("/login/", data)
    assert response.status_code == 400
    assert "Please give your email address and password." in response.content.decode()


# --- invitations --------------------------------------------------------------------------------


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_an_admin_invites_a_member_who_sets_a_password_once_on_this_host_only(tenant_world, mailoutbox, isolation):
    tenant, other = tenant_world[isolation]
    admin = sign_in(tenant, owner(tenant))
    response = admin.post("/members/new/", {"name": "Ivy Invitee", "email": "ivy@example.test"})
    assert response.status_code == 302
    assert member(tenant, "ivy@example.test").invitation_pending
    assert [m.to for m in mailoutbox] == [["ivy@example.test"]]
    link_host, path = link_in(mailoutbox[0])
    assert link_host.split(":")[0] == host(tenant)
    # Bound to the tenant's host: the same link on another tenant's host (same level) is nothing.
    assert client_for(other).get(path).status_code == 404
    # Cannot sign in before accepting.
    assert client_for(tenant).post("/login/", {"email": "ivy@example.test", "password": "anything"}).status_code == 401
    invitee = client_for(tenant)
    assert invitee.get(path).status_code == 200
    response = invitee.post(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/members/"
    assert invitee.get("/members/").status_code == 200
    assert client_for(tenant).get(path).status_code == 404  # single use
    sign_in(tenant, "ivy@example.test", NEW_PASSWORD)
    assert [e.event_type for e in log_events(tenant, "member.invited")] == ["member.invited"]
    assert len(log_events(tenant, "member.invitation_accepted")) == 1


def test_a_resent_invitation_kills_the_earlier_link_and_a_revoked_one_kills_all(tenant_world, mailoutbox):
    tenant = tenant_world["schema"][0]
    admin = sign_in(tenant, owner(tenant))
    admin.post("/members/new/", {"name": "Rita", "email": "rita@example.test"})
    rita = member(tenant, "rita@example.test")
    _host, first = link_in(mailoutbox[0])
    response = admin.post(f"/members/{rita.pk}/resend/", follow=True)
    assert "A new invitation was sent to rita@example.test" in response.content.decode()
    _host, second = link_in(mailoutbox[1])
    assert client_for(tenant).get(first).status_code == 404
    assert client_for(tenant).get(second).status_code == 200
    admin.post(f"/members/{rita.pk}/revoke/")
    assert member(tenant, "rita@example.test") is None
    assert client_for(tenant).get(second).status_code == 404
    assert len(log_events(tenant, "member.invitation_revoked")) == 1


def test_an_accepted_invitation_cannot_be_resent_or_revoked(tenant_world):
    tenant = tenant_world["shared"][0]
    admin = sign_in(tenant, owner(tenant))
    m0 = member(tenant, f"m0@{tenant.slug}.test")
    response = admin.post(f"/members/{m0.pk}/revoke/", follow=True)
    assert "has already accepted the invitation" in response.content.decode()
    assert member(tenant, m0.email) is not None


def test_an_invitation_whose_email_cannot_be_sent_is_not_created(tenant_world, monkeypatch):
    from workspace import members

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("no mail server")

    monkeypatch.setattr(members, "send_mail", refuse)
    tenant = tenant_world["shared"][0]
    admin = sign_in(tenant, owner(tenant))
    response = admin.post("/members/new/", {"name": "Lost", "email": "lost@example.test"}, follow=True)
    assert response.status_code == 200
    assert "The email could not be sent; nothing was changed." in response.content.decode()
    assert member(tenant, "lost@example.test") is None
    assert log_events(tenant, "member.invited") == []
    response = client_for(tenant).post("/forgot-password/", {"email": f"m0@{tenant.slug}.test"})
    assert response.status_code == 503 and "could not be sent" in response.content.decode()


def test_inviting_an_existing_email_is_one_sentence(tenant_world, mailoutbox):
    tenant = tenant_world["dedicated"][1]
    admin = sign_in(tenant, owner(tenant))
    response = admin.post("/members/new/", {"name": "Dup", "email": f"m0@{tenant.slug}.test"}, follow=True)
    assert f"A member with the email m0@{tenant.slug}.test already exists." in response.content.decode()
    assert mailoutbox == []


# --- roles and removal --------------------------------------------------------------------------


def test_an_admin_changes_roles_but_the_last_admin_stays_one(tenant_world):
    tenant = tenant_world["shared"][1]
    admin = sign_in(tenant, owner(tenant))
    me, m0 = member(tenant, owner(tenant)), member(tenant, f"m0@{tenant.slug}.test")
    response = admin.post(f"/members/{me.pk}/role/", {"role": "member"}, follow=True)
    assert "is the last admin" in response.content.decode()
    admin.post(f"/members/{m0.pk}/role/", {"role": "admin"})
    assert member(tenant, m0.email).is_admin
    admin.post(f"/members/{me.pk}/role/", {"role": "member"})
    assert not member(tenant, me.email).is_admin
    assert [e.event_data["is_admin"] for e in log_events(tenant, "member.role_changed")] == [True, False]
    assert admin.post(f"/members/{m0.pk}/role/", {"role": "member"}).status_code == 403  # no longer an admin


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_removing_a_member_ends_their_sessions_at_once(tenant_world, isolation):
    tenant = tenant_world[isolation][1]
    victim_email = f"m1@{tenant.slug}.test"
    victim = sign_in(tenant, victim_email)
    other_device = sign_in(tenant, victim_email, address="10.0.0.99")
    pk = member(tenant, victim_email).pk
    with tenant_context(tenant):
        assert MemberSession.objects.filter(member_id=pk).count() == 2
    admin = sign_in(tenant, owner(tenant))
    response = admin.post(f"/members/{pk}/remove/", follow=True)
    assert "was removed and signed out" in response.content.decode()
    with tenant_context(tenant):
        assert MemberSession.objects.filter(member_id=pk).count() == 0
        assert not Member.objects.filter(pk=pk).exists()
    assert victim.get("/members/").status_code == 302
    assert other_device.get("/members/").status_code == 302
    assert log_events(tenant, "member.removed")[0].event_data["sessions_ended"] == 2


def forget_session_owners(tenant) -> None:
    """Make every session of the tenant look like one saved before MemberSession.member_id existed."""
    with tenant_context(tenant):
        MemberSession.objects.update(member_id=None)


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_sessions_saved_before_member_ids_were_recorded_end_with_a_removal_too(tenant_world, isolation):
    tenant = tenant_world[isolation][0]
    victim_email, bystander_email = f"m1@{tenant.slug}.test", f"m0@{tenant.slug}.test"
    victim = sign_in(tenant, victim_email)
    bystander = sign_in(tenant, bystander_email)
    admin = sign_in(tenant, owner(tenant))
    forget_session_owners(tenant)
    pk = member(tenant, victim_email).pk
    response = admin.post(f"/members/{pk}/remove/", follow=True)
    assert "was removed and signed out" in response.content.decode()
    assert victim.get("/members/").status_code == 302  # the old session is gone
    assert bystander.get("/members/").status_code == 200  # another member's old session is not
    assert log_events(tenant, "member.removed")[0].event_data["sessions_ended"] == 1
    with tenant_context(tenant):  # the others' old sessions were given their member ids on the way
        assert MemberSession.objects.filter(member_id=member(tenant, bystander_email).pk).count() == 1


def test_a_password_reset_ends_sessions_saved_before_member_ids_were_recorded(tenant_world, mailoutbox):
    tenant = tenant_world["dedicated"][0]
    email = f"m1@{tenant.slug}.test"
    old_session = sign_in(tenant, email)
    forget_session_owners(tenant)
    client_for(tenant).post("/forgot-password/", {"email": email})
    _host, path = link_in(mailoutbox[0])
    assert client_for(tenant).post(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    assert old_session.get("/members/").status_code == 302


def test_an_admin_cannot_remove_themselves(tenant_world):
    tenant = tenant_world["schema"][1]
    admin = sign_in(tenant, owner(tenant))
    me = member(tenant, owner(tenant))
    response = admin.post(f"/members/{me.pk}/remove/", follow=True)
    assert "You cannot remove yourself" in response.content.decode()
    assert member(tenant, owner(tenant)) is not None


ADMIN_POSTS = ["/members/new/", "/members/{pk}/resend/", "/members/{pk}/revoke/", "/members/{pk}/role/",
               "/members/{pk}/unlock/", "/members/{pk}/remove/"]  # fmt: skip


@pytest.mark.parametrize("path", ADMIN_POSTS)
def test_plain_members_are_refused_every_admin_action(tenant_world, mailoutbox, path):
    tenant = tenant_world["dedicated"][0]
    target = member(tenant, f"m1@{tenant.slug}.test")
    plain = sign_in(tenant, f"m0@{tenant.slug}.test")
    data = {"name": "Sneaky", "email": "sneaky@example.test", "role": "admin"}
    assert plain.post(path.format(pk=target.pk), data).status_code == 403
    assert member(tenant, target.email) is not None and not member(tenant, target.email).is_admin
    assert member(tenant, "sneaky@example.test") is None and mailoutbox == []


@pytest.mark.parametrize("path", ADMIN_POSTS)
def test_anonymous_visitors_are_sent_to_sign_in_for_every_admin_action(tenant_world, path):
    response = client_for(tenant_world["shared"][0]).post(path.format(pk=1))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("path", ["/members/{pk}/", "/members/{pk}/remove/"])
def test_another_tenants_member_is_not_found(tenant_world, path):
    a, b = tenant_world["shared"]
    admin = sign_in(a, owner(a))
    stranger = member(b, f"m0@{b.slug}.test")
    method = admin.get if path.endswith("}/") else admin.post
    assert method(path.format(pk=stranger.pk)).status_code == 404
    assert method(path.format(pk=2**70)).status_code == 404
    assert member(b, stranger.email) is not None


# --- forgot password ------------------------------------------------------------------------------


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_forgot_password_emails_a_one_time_link_and_signs_out_other_sessions(tenant_world, mailoutbox, isolation):
    tenant, other = tenant_world[isolation]
    email = f"m0@{tenant.slug}.test"
    old_session = sign_in(tenant, email)
    response = client_for(tenant).post("/forgot-password/", {"email": email})
    assert response.status_code == 200 and "a link to choose a new password is on its way" in response.content.decode()
    _host, path = link_in(mailoutbox[0])
    assert client_for(other).get(path).status_code == 404  # another tenant's host
    fresh = client_for(tenant)
    assert fresh.post(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    assert fresh.get("/members/").status_code == 200
    assert old_session.get("/members/").status_code == 302  # signed out everywhere else
    assert client_for(tenant).get(path).status_code == 404  # used
    sign_in(tenant, email, NEW_PASSWORD)
    assert client_for(tenant).post("/login/", {"email": email, "password": MEMBER_PASSWORD}).status_code == 401


def test_forgot_password_says_the_same_for_unknown_addresses_and_sends_nothing(tenant_world, mailoutbox):
    tenant = tenant_world["schema"][0]
    known = client_for(tenant).post("/forgot-password/", {"email": f"m0@{tenant.slug}.test"})
    unknown = client_for(tenant).post("/forgot-password/", {"email": "nobody@example.test"})
    assert known.status_code == unknown.status_code == 200
    assert "is on its way" in unknown.content.decode()
    assert len(mailoutbox) == 1


def test_an_expired_reset_link_does_not_work(tenant_world, mailoutbox, settings):
    tenant = tenant_world["shared"][1]
    client_for(tenant).post("/forgot-password/", {"email": f"m0@{tenant.slug}.test"})
    _host, path = link_in(mailoutbox[0])
    settings.WORKSPACE_RESET_MAX_AGE_SECONDS = 0
    assert client_for(tenant).get(path).status_code == 404
    settings.WORKSPACE_RESET_MAX_AGE_SECONDS = 3600
    assert client_for(tenant).get(path).status_code == 200


def test_forgot_password_is_rate_limited(tenant_world, mailoutbox, settings):
    settings.WORKSPACE_RESET_RATE_LIMIT = "2/h"
    tenant = tenant_world["dedicated"][1]
    client = client_for(tenant, "203.0.113.40")
    for _ in range(2):
        assert client.post("/forgot-password/", {"email": f"m0@{tenant.slug}.test"}).status_code == 200
    response = client.post("/forgot-password/", {"email": f"m0@{tenant.slug}.test"})
    assert response.status_code == 429 and "Too many password reset requests" in response.content.decode()
    assert len(mailoutbox) == 2
    assert client.post("/forgot-password/", {"email": "x\x00@example.test"}).status_code == 400


def test_a_tampered_link_is_not_found(tenant_world):
    tenant = tenant_world["shared"][0]
    for token in ["x", "a" * 2000, "eyJ0IjoiMSJ9:1abc:zzzz"]:
        assert client_for(tenant).get(f"/set-password/{token}/").status_code == 404


# --- the owner of an operator-provisioned tenant ------------------------------------------------------


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_the_owner_of_a_provisioned_tenant_is_emailed_a_set_password_link(make_tenant, mailoutbox, isolation):
    tenant = make_tenant(isolation, seed=False, owner_email="founder@example.test")
    mails = [m for m in mailoutbox if m.to == ["founder@example.test"]]
    assert len(mails) == 1 and "is ready" in mails[0].subject
    link_host, path = link_in(mails[0])
    assert link_host.split(":")[0] == host(tenant)
    client = client_for(tenant)
    assert client.post(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    assert client.get("/members/").status_code == 200
    sign_in(tenant, "founder@example.test", NEW_PASSWORD)
    assert member(tenant, "founder@example.test").is_admin


def test_a_mail_server_that_is_down_does_not_undo_the_provisioning(make_tenant, monkeypatch):
    from sagas.models import SagaStep
    from tenants.provisioning import sagas

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("no mail server")

    monkeypatch.setattr(sagas, "send_mail", refuse)
    tenant = make_tenant("shared", seed=False, owner_email="unlucky@example.test")
    assert tenant.status == "active"
    step = SagaStep.objects.get(saga__tenant_id=tenant.pk, name="email_owner")
    assert step.output["owner_emailed"] is False
    assert member(tenant, "unlucky@example.test").invitation_pending  # "Forgot your password?" still works


def test_a_signup_owner_who_chose_a_password_gets_no_set_password_email(make_tenant, mailoutbox):
    from django.contrib.auth.hashers import make_password

    tenant = make_tenant(
        "shared", seed=False, owner_email="signup@example.test", owner_password_hash=make_password(NEW_PASSWORD)
    )
    assert [m for m in mailoutbox if m.to == ["signup@example.test"]] == []
    sign_in(tenant, "signup@example.test", NEW_PASSWORD)
    assert not member(tenant, "signup@example.test").invitation_pending


def test_the_email_owner_step_sends_nothing_once_the_owner_has_a_password(make_tenant, mailoutbox):
    from types import SimpleNamespace

    from tenants.provisioning.sagas import email_owner

    tenant = make_tenant("schema", seed=False, owner_email="again@example.test")
    _host, path = link_in(mailoutbox[-1])
    client_for(tenant).post(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    sent = len(mailoutbox)
    email_owner(SimpleNamespace(input={}, value=lambda key: str(tenant.pk)))  # a retry after the owner joined
    assert len(mailoutbox) == sent


# --- with the real data-plane role -------------------------------------------------------------------


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_lockout_and_its_log_work_on_the_data_plane_role(make_tenant, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_FREE = 100
    for isolation in ("shared", "dedicated"):
        tenant = make_tenant(isolation)
        attacker = client_for(tenant, "203.0.113.50")
        for _ in range(3):
            assert attacker.post("/login/", {"email": owner(tenant), "password": "guess"}).status_code == 401
        assert attacker.post("/login/", {"email": owner(tenant), "password": MEMBER_PASSWORD}).status_code == 429
        sign_in(tenant, owner(tenant), address="198.51.100.50")
        assert len(log_events(tenant, "member.signin_locked")) == 1
