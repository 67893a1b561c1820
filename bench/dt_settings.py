"""Settings for the django-tenants baseline of bench/bench_migrations.py (never used by the app).

The same bench database, schemas and `workspace` migrations as our run; django-tenants' own
tenant table lists the same pool and schema placements (it has no dedicated databases).
"""

from __future__ import annotations

import json
import os

import environ

env = environ.Env()
_db = env.db_url_config(os.environ["BENCH_DATABASE_URL"])

SECRET_KEY = "bench-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        **_db,
        "ENGINE": "django_tenants.postgresql_backend",
        "USER": os.environ.get("DB_OWNER_ROLE", "saas_owner"),
        "PASSWORD": os.environ.get("DB_OWNER_PASSWORD", ""),
    }
}
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
SHARED_APPS = ["django_tenants", "bench.dt_tenants", "django.contrib.contenttypes"]
TENANT_APPS = ["workspace"]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]
TENANT_MODEL = "dt_tenants.Client"
TENANT_DOMAIN_MODEL = "dt_tenants.Domain"
TENANT_MULTIPROCESSING_MAX_PROCESSES = int(os.environ.get("BENCH_PROCESSES", "2"))
MIGRATION_MODULES = json.loads(os.environ.get("DJANGO_MIGRATION_MODULES", "{}") or "{}")
