"""Shared personas for every test: `platform_admin`, `operator`, `viewer`, `outsider`.

    def test_viewers_cannot_create_operators(client_for, viewer):
        response = client_for(viewer).post("/operators/new/", {...})
        assert response.status_code == 403

- `platform_admin` / `operator` / `viewer`: staff users in the Admin / Operator / Viewer group.
- `outsider`: an active, signed-in-able user who is not staff (e.g. a tenant member).
- `make_operator(role, username=None)`: more operators of any role.
- `client_for(user)`: a django.test.Client signed in as `user` (force_login, no password check).
- `api_token_for(user)`: a fresh plaintext API token for `user` (Bearer).
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


@pytest.fixture
def client_for(db) -> Callable[[Any], Client]:
    def make(user: Any | None) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def api_token_for(db) -> Callable[[Any], str]:
    from saas_admin.services import token_create

    def make(user: Any, name: str = "test token") -> str:
        return token_create(actor=user, name=name, expires_in_days=None).plaintext

    return make


@pytest.fixture
def api_client_for(api_token_for) -> Callable[[Any], Client]:
    def make(user: Any) -> Client:
        return Client(headers={"Authorization": f"Bearer {api_token_for(user)}"})

    return make
