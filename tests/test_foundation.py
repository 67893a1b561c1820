from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
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
def test_a_transactional_test_leaves_its_rows_behind_for_the_flush(django_user_model):
    django_user_model.objects.create_user(username="left-behind", password="a-long-password-1")


@pytest.mark.django_db(transaction=True)
def test_the_flush_between_transactional_tests_really_empties_tables_and_keeps_role_groups(django_user_model):
    # Runs after the test above (file order): the app role cannot TRUNCATE, so the flush goes through the owner.
    assert not django_user_model.objects.filter(username="left-behind").exists()
    assert set(Group.objects.values_list("name", flat=True)) >= {"Viewer", "Operator", "Admin"}
