"""Slugs and schema names are validated before any SQL; what passes is exactly what PostgreSQL stores."""

from __future__ import annotations

import re
import string

import psycopg
import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from psycopg import sql

from core import dbroles
from tenants.validation import (
    RESERVED_SLUGS,
    RESERVED_SQL,
    schema_name_for_slug,
    validate_database_name,
    validate_schema_name,
    validate_slug,
)

SCHEMA_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
NASTY = [
    "", "A", "public", "pg_catalog", "pg_temp", "information_schema", "x;drop schema public", 't"; DROP TABLE x; --',
    "tenant$1", "café", "ｆｕｌｌ", "a b", "a\x00b", "a--b", "1abc", "_abc", "a" * 64, "select", "user", "\u0130",
]  # fmt: skip
# Text that leans towards the interesting characters: quotes, semicolons, unicode look-alikes, NUL.
names = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "_-$\"'; .\x00éİı", max_size=70),
    st.text(max_size=70),
    st.from_regex(SCHEMA_PATTERN, fullmatch=True),
    st.sampled_from(sorted(RESERVED_SQL | RESERVED_SLUGS)),
)


@hsettings(max_examples=400, deadline=None)
@given(names)
def test_a_schema_name_is_either_refused_or_exactly_the_strict_pattern(name):
    try:
        accepted = validate_schema_name(name)
    except ValidationError as exc:
        assert len(exc.messages) == 1 and exc.messages[0].endswith(".")
        return
    assert accepted == name
    assert SCHEMA_PATTERN.fullmatch(name) and not name.startswith("pg_") and name not in RESERVED_SQL


@hsettings(max_examples=400, deadline=None)
@given(names)
@example("acme-corp")
def test_a_slug_is_either_refused_or_maps_to_a_valid_schema_and_database_name(slug):
    try:
        validate_slug(slug)
    except ValidationError as exc:
        assert len(exc.messages) == 1
        return
    assert re.fullmatch(r"[a-z][a-z0-9-]{2,39}", slug) and "--" not in slug and not slug.endswith("-")
    schema = schema_name_for_slug(slug)
    assert schema == "t_" + slug.replace("-", "_") and SCHEMA_PATTERN.fullmatch(schema)
    validate_database_name("test_h2_t_" + slug.replace("-", "_"))


@pytest.mark.parametrize("name", NASTY)
def test_nasty_names_are_refused(name):
    with pytest.raises(ValidationError):
        validate_schema_name(name)
    with pytest.raises(ValidationError):
        validate_slug(name)


@pytest.mark.django_db(databases=["default", "owner"])
@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.from_regex(SCHEMA_PATTERN, fullmatch=True), names))
def test_every_accepted_name_creates_exactly_that_schema_in_postgresql(name):
    try:
        validate_schema_name(name)
    except ValidationError:
        return
    with psycopg.connect(**dbroles.conninfo(connections.settings["owner"])) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        found = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname = %s", [name]).fetchall()
        assert found == [(name,)]
        conn.rollback()
