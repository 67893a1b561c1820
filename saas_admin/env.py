"""The one place that reads the environment (django-environ).

Every variable is documented in `.env.example`. When `DATABASE_URL` is unset
the embedded PostgreSQL server (see `embedded_pg`) is used; when
`CELERY_BROKER_URL` is unset Celery uses its filesystem transport under
`.data/`, so a fresh machine needs no services at all.
"""

from __future__ import annotations

from pathlib import Path

import environ

from saas_admin import embedded_pg

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / ".data"

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")


def database_url() -> str:
    """Server and database, with a bootstrap user allowed to create roles and databases."""
    return env.str("DATABASE_URL", default="") or embedded_pg.url()


def uses_embedded_database() -> bool:
    return not env.str("DATABASE_URL", default="")


def broker_url() -> str:
    return env.str("CELERY_BROKER_URL", default="") or "filesystem://"
