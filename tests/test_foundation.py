from __future__ import annotations

import pytest
from django.db import connection


@pytest.mark.django_db
def test_the_app_connects_as_a_role_that_cannot_bypass_rls():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        )
        name, superuser, bypass, createrole, createdb = cursor.fetchone()
    assert name == "saas_app"
    assert (superuser, bypass, createrole, createdb) == (False, False, False, False)


@pytest.mark.django_db(transaction=True)
def test_transactional_tests_can_flush_although_the_app_role_cannot_truncate(django_user_model):
    django_user_model.objects.create_user(username="someone", password="a-long-password-1")
    assert django_user_model.objects.filter(username="someone").exists()
