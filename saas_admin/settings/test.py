"""Test settings: the real PostgreSQL (embedded unless DATABASE_URL is set)."""

from saas_admin.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
