"""Test support for sagas: operator personas and a real Celery worker in a subprocess.

Import the fixtures into a test module (`from events.sagas.testing import operator, ...`).
"""

from __future__ import annotations

import pytest


def make_operator(username: str, role_name: str | None, *, staff: bool = True):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(
        username=username, email=f"{username}@example.com", password="a-long-password-1", is_staff=staff
    )
    if role_name:
        # Transactional tests flush the groups the data migration made, so make sure they exist.
        user.groups.add(Group.objects.get_or_create(name=role_name)[0])
    return user


@pytest.fixture
def platform_admin(db):
    return make_operator("platform_admin", "Admin")


@pytest.fixture
def operator(db):
    return make_operator("operator", "Operator")


@pytest.fixture
def viewer(db):
    return make_operator("viewer", "Viewer")


@pytest.fixture
def outsider(db):
    return make_operator("outsider", None, staff=False)
