"""Test settings: the real PostgreSQL (embedded unless DATABASE_URL is set)."""

from saas_admin.settings.base import *  # noqa: F403
from saas_admin.settings.base import env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Retries in tests should not wait seconds (worker harnesses set their own, even shorter, values).
JOBS_RETRY_BACKOFF_SECONDS = env.float("JOBS_RETRY_BACKOFF_SECONDS", default=0.05)
JOBS_RETRY_BACKOFF_MAX_SECONDS = env.float("JOBS_RETRY_BACKOFF_MAX_SECONDS", default=0.2)
# Fault injection for the crash tests: a test-only module, never imported by other settings.
JOBS_FAULT_HOOK = "tests.support.faults.inject" if env.bool("JOBS_FAULT_INJECTION", default=False) else ""

# The host-cache listener thread would hold a connection to the test database past its teardown;
# tests of the move clear caches through the same function the notification calls.
TENANCY_HOST_CACHE_LISTEN = False
