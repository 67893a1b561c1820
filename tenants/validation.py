"""Strict validation of every name that ends up in SQL or in a host name.

Slugs become host names (`<slug>.<BASE_DOMAIN>`), schema names (`t_<slug>`)
and database names, so they are checked here *before* any SQL runs, and every
identifier is still quoted with psycopg.sql.Identifier afterwards (defence in
depth). django-tenants' own validator accepts names such as `pg_x` or
`public`, which we refuse.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

SLUG_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
SLUG_MIN, SLUG_MAX = 3, 40
SCHEMA_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DATABASE_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

# Hosts and schemas the control plane itself uses, plus words that read as system names.
RESERVED_SLUGS = frozenset(
    {
        "admin", "api", "app", "www", "mail", "smtp", "ftp", "static", "media", "assets", "status",
        "signup", "login", "logout", "auth", "account", "accounts", "billing", "support", "help",
        "docs", "blog", "dashboard", "console", "control", "internal", "system", "root", "test",
        "tenant", "tenants", "template", "public", "default", "owner", "postgres", "localhost",
    }
)  # fmt: skip

# PostgreSQL's reserved key words (those that cannot be used as a bare identifier) and system schemas.
RESERVED_SQL = frozenset(
    """
    all analyse analyze and any array as asc asymmetric authorization binary both case cast check
    collate collation column concurrently constraint create cross current_catalog current_date
    current_role current_schema current_time current_timestamp current_user default deferrable desc
    distinct do else end except false fetch for foreign freeze from full grant group having ilike in
    initially inner intersect into is isnull join lateral leading left like limit localtime
    localtimestamp natural not notnull null offset on only or order outer overlaps placing primary
    references returning right select session_user similar some symmetric system_user table tablesample
    then to trailing true union unique user using variadic verbose when where window with
    public information_schema
    """.split()
)


def validate_slug(slug: object) -> str:
    """Return the slug if it is acceptable; raise ValidationError with one clear sentence otherwise."""
    if not isinstance(slug, str):
        raise ValidationError("The slug must be text.", code="invalid")
    if not (SLUG_MIN <= len(slug) <= SLUG_MAX):
        raise ValidationError(
            f"The slug must be {SLUG_MIN} to {SLUG_MAX} characters long.", code="length", params={"slug": slug}
        )
    if not SLUG_RE.fullmatch(slug):
        raise ValidationError(
            "The slug may only contain lowercase letters, digits and single hyphens, and must start with a letter.",
            code="invalid",
        )
    if slug in RESERVED_SLUGS or slug.replace("-", "_") in RESERVED_SQL or slug.startswith(("pg-", "xn-")):
        raise ValidationError(f"The slug “{slug}” is reserved; please choose another.", code="reserved")
    return slug


def validate_schema_name(name: object) -> str:
    """A PostgreSQL schema name we are willing to create or drop."""
    if not isinstance(name, str) or not SCHEMA_RE.fullmatch(name):
        raise ValidationError("That is not a valid schema name.", code="invalid")
    if name.startswith("pg_") or name in RESERVED_SQL:
        raise ValidationError(f"The schema name “{name}” is reserved.", code="reserved")
    return name


def validate_database_name(name: object) -> str:
    if not isinstance(name, str) or not DATABASE_RE.fullmatch(name):
        raise ValidationError("That is not a valid database name.", code="invalid")
    if name.startswith("pg_") or name in RESERVED_SQL or name in {"postgres", "template0", "template1"}:
        raise ValidationError(f"The database name “{name}” is reserved.", code="reserved")
    return name


def schema_name_for_slug(slug: str) -> str:
    return validate_schema_name("t_" + validate_slug(slug).replace("-", "_"))
