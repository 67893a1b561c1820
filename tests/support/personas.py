"""Shared personas for every test: `platform_admin`, `operator`, `viewer`, `outsider`.

    def test_viewers_cannot_create_operators(client_for, viewer):
        response = client_for(viewer).post("/operators/new/", {...})
        assert response.status_code == 403

- `platform_admin` / `operator` / `viewer`: staff users in the Admin / Operator / Viewer group.
- `outsider`: an active, signed-in-able user who is not staff (e.g. a tenant member).
- `make_operator(role, username=None)`: more operators of any role.
- `client_for(user)`: a django.test.Client signed in as `user` (force_login, no password check) who
  also passed two-factor sign-in (a confirmed TOTP device is made for operators);
  `client_for(user, mfa=False)`: signed in with the password only.
- `api_token_for(user, scope=None)`: a fresh plaintext API token for `user` (Bearer), by default
  with the widest scope the user's role allows.
- `api_client_for(user)`: a Client that sends `Authorization: Bearer <token>` on every request.

These fixtures use the `db` fixture, so they work in any test marked
`django_db` (transactional or not) on the root conftest's database. The root
conftest loads this module as a pytest plugin, so every test package has them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from core.permissions import Role

_counter = itertools.count(1)


@pytest.fixture
def make_operator(db) -> Callable[..., Any]:
    from tests.factories import OperatorFactory

    def make(role: Role | None, username: str | None = None, **extra: Any) -> Any:
        name = username or f"{(role.name.lower() if role else 'norole')}{next(_counter)}"
        return OperatorFactory(username=name, role=role, **extra)

    return make


@pytest.fixture
def platform_admin(make_operator) -> Any:
    return make_operator(Role.ADMIN, "ada_admin")


@pytest.fixture
def operator(make_operator) -> Any:
    return make_operator(Role.OPERATOR, "otto_operator")


@pytest.fixture
def viewer(make_operator) -> Any:
    return make_operator(Role.VIEWER, "vera_viewer")


@pytest.fixture
def outsider(db) -> Any:
    from tests.factories import UserFactory

    return UserFactory(username="oscar_outsider", email="oscar@example.test")


def mfa_verify_client(client: Client, user: Any) -> None:
    """Mark the client's session as having passed the second factor (a confirmed TOTP device)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    if not user.is_staff:
        return
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="test app", confirmed=True
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


@pytest.fixture
def client_for(db) -> Callable[..., Client]:
    def make(user: Any | None, *, mfa: bool = True) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
            if mfa:
                mfa_verify_client(client, user)
        return client

    return make


@pytest.fixture
def api_token_for(db) -> Callable[..., str]:
    from core.permissions import Role, operator_role
    from saas_admin.services import token_create

    def make(user: Any, name: str = "test token", scope: str | None = None) -> str:
        widest = {Role.VIEWER: "read", Role.OPERATOR: "write", Role.ADMIN: "admin"}.get(
            operator_role(user) or Role.VIEWER, "read"
        )
        return token_create(actor=user, name=name, expires_in_days=None, scope=scope or widest).plaintext

    return make


@pytest.fixture
def api_client_for(api_token_for) -> Callable[[Any], Client]:
    def make(user: Any) -> Client:
        return Client(headers={"Authorization": f"Bearer {api_token_for(user)}"})

    return make
