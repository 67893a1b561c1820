"""Base settings: every setting is declared here; production only tightens. One module over 400 lines
because a reader looks for every setting and its default in one place (.env.example mirrors it)."""

from __future__ import annotations

from saas_admin.env import BASE_DIR, DATA_DIR, broker_url, database_url, env

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me-0123456789abcdef")
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=[".localhost", "localhost", "127.0.0.1", "testserver", ".testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# The operator dashboard lives on BASE_DOMAIN; tenant workspaces on <slug>.BASE_DOMAIN.
BASE_DOMAIN = env.str("BASE_DOMAIN", default="localhost")

# Key for encrypting credentials and personal data at rest (Fernet, urlsafe base64 of 32 bytes).
# Development falls back to a key derived from SECRET_KEY; production requires it.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "ninja",  # /api/docs from its own static files (no CDN)
    # Operator two-factor sign-in: TOTP apps, one-time recovery codes, passkeys (docs/accounts.md).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    # Ours, bottom layer first (an app imports only apps above it in this list; docs/architecture.md).
    "core",
    "audit",
    "jobs",
    "events",
    "events.tenantlog",
    "sagas",
    "workspace",
    "tenants",
    "migration_runs",
    "privacy",
    "compliance",
    "usage",
    "webhooks",
    "saas_admin",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A NUL character anywhere in the request: 400 with one sentence, never a database error.
    "core.middleware.RejectMalformedInputMiddleware",
    # Host → tenant; on a tenant's host the rest runs in its context as the data-plane role.
    "tenants.middleware.TenantHostMiddleware",
    "tenants.middleware.HostSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Two-factor sign-in, server-side, for every dashboard view and session API call.
    "saas_admin.mfa.OperatorMFAMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "saas_admin.urls"
# Tenant hosts (<slug>.BASE_DOMAIN, verified custom domains) get this URLconf (tenants.middleware).
TENANCY_HOST_URLCONF = "saas_admin.host_urls"
WSGI_APPLICATION = "saas_admin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "saas_admin.context_processors.operator_roles",
            ],
        },
    }
]

# --- Database ---------------------------------------------------------------
# DATABASE_URL names the server and database and a bootstrap user that may
# create roles and databases (the embedded server when unset). The process
# itself never runs as that user: web requests and Celery tasks use the *app*
# role (NOSUPERUSER NOBYPASSRLS, owns nothing), DDL and migrations the *owner*
# role, through the `owner` alias. See saas_admin/dbroles.py.
DB_OWNER_ROLE = env.str("DB_OWNER_ROLE", default="saas_owner")
DB_OWNER_PASSWORD = env.str("DB_OWNER_PASSWORD", default="")
DB_APP_ROLE = env.str("DB_APP_ROLE", default="saas_app")
DB_APP_PASSWORD = env.str("DB_APP_PASSWORD", default="")
# Requests on a tenant's host run as this role: DML on TENANT_APPS tables only (docs/accounts.md).
DB_DATA_ROLE = env.str("DB_DATA_ROLE", default="saas_data")
DB_DATA_PASSWORD = env.str("DB_DATA_PASSWORD", default="")
DB_POOL = env.bool("DB_POOL", default=True)
# PgBouncer in transaction mode in front of the servers: no server-side prepared statements (a
# prepared statement lives on one server connection; PgBouncer < 1.21 does not track them). Tenant
# settings are transaction-local already (docs/tenancy.md).
DB_PGBOUNCER = env.bool("DB_PGBOUNCER", default=False)
# Otherwise psycopg prepares only the statements code asks it to (events/store.py's appends): Django's
# cursors bind client-side and never prepare, and this threshold is never reached by counting.
DB_PREPARE_WHEN_ASKED = 2**31 - 1
DB_ENGINE = "core.db_backend"

DATABASE_BOOTSTRAP = env.db_url_config(database_url())
TEST_DATABASE_NAME = env.str("TEST_DATABASE_NAME", default="test_saas_admin")


def _database(user: str, password: str, *, pool: bool) -> dict:
    config = dict(DATABASE_BOOTSTRAP)
    config.update(
        ENGINE=DB_ENGINE,
        USER=user,
        PASSWORD=password,
        CONN_MAX_AGE=0,
        OPTIONS=({"pool": {"min_size": 1, "max_size": 8, "timeout": 10}} if pool else {})
        | {"prepare_threshold": None if DB_PGBOUNCER else DB_PREPARE_WHEN_ASKED},
        TEST={"NAME": TEST_DATABASE_NAME},
    )
    return config


DATABASES = {
    "default": _database(DB_APP_ROLE, DB_APP_PASSWORD, pool=DB_POOL),
    "owner": _database(DB_OWNER_ROLE, DB_OWNER_PASSWORD, pool=False),
}
# The data plane on the control-plane server (pool and schema placements): the alias `data`, used by
# requests on tenant hosts only, is registered at first use from these (tenants/databases.py).
DATA_PLANE_DATABASE = _database(DB_DATA_ROLE, DB_DATA_PASSWORD, pool=DB_POOL)
DATABASE_ROUTERS = ["core.routers.OwnerMigratesRouter", "core.routers.TenantRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Tenancy ----------------------------------------------------------------
# Apps whose tables live in every placement (pool schema, own schema, dedicated
# database) with tenant_id + FORCE'd RLS; everything else is control plane only.
# The control-plane `public` schema also holds empty RLS'd copies of the
# TENANT_APPS tables, so a query without tenant context returns zero rows.
TENANT_APPS = ["workspace", "events.tenantlog"]
SHARED_APPS = [app for app in INSTALLED_APPS if app not in TENANT_APPS]
TENANCY_POOL_CAPACITY = env.int("TENANCY_POOL_CAPACITY", default=100)
# Tenant-host GET/HEAD/OPTIONS requests run without a request transaction (tenants/middleware.py).
TENANCY_READ_ONLY_AUTOCOMMIT = env.bool("TENANCY_READ_ONLY_AUTOCOMMIT", default=True)
TENANCY_TEMPLATE_SCHEMA = "tenant_template"
# Hosts that serve the operator dashboard besides BASE_DOMAIN and admin.BASE_DOMAIN.
TENANCY_OPERATOR_HOSTS = env.list("TENANCY_OPERATOR_HOSTS", default=["127.0.0.1", "testserver"])
# Dedicated tenant databases: server (defaults to the control-plane server) and pool size per process.
TENANCY_DEDICATED_HOST = env.str("TENANCY_DEDICATED_HOST", default="")
TENANCY_DEDICATED_PORT = env.str("TENANCY_DEDICATED_PORT", default="")
TENANCY_DEDICATED_POOL_MAX = env.int("TENANCY_DEDICATED_POOL_MAX", default=4)
# Per process and database server: at most this many app-role connections to dedicated databases
# (least-recently-used aliases closed beyond it), and pooled connections idle this long are closed.
TENANCY_SERVER_CONNECTION_BUDGET = env.int("TENANCY_SERVER_CONNECTION_BUDGET", default=40)
TENANCY_DEDICATED_IDLE_SECONDS = env.float("TENANCY_DEDICATED_IDLE_SECONDS", default=60.0)
# How links to a tenant workspace are written (e.g. in the owner's set-password link).
TENANCY_WORKSPACE_SCHEME = env.str("TENANCY_WORKSPACE_SCHEME", default="http")
# The port defaults to PORT, the one `make run` serves on, so links work on `PORT=8101 make run`.
TENANCY_WORKSPACE_PORT = env.str("TENANCY_WORKSPACE_PORT", default=env.str("PORT", default="8000"))
# Host → tenant lookups are cached per process this long (0 disables); see docs/tenancy.md.
TENANCY_HOST_CACHE_SECONDS = env.float("TENANCY_HOST_CACHE_SECONDS", default=2.0)
# Each web process listens for "hosts changed" notifications and clears its host cache at once.
TENANCY_HOST_CACHE_LISTEN = env.bool("TENANCY_HOST_CACHE_LISTEN", default=True)
# Rename: how long a renamed tenant's old host keeps redirecting to the new one (docs/lifecycle.md).
TENANCY_RENAME_REDIRECT_DAYS = env.int("TENANCY_RENAME_REDIRECT_DAYS", default=30)
# Moves: how long the source copy stays after the switch, and how far a target pool's id sequences
# jump past the source's before copying (docs/lifecycle.md).
TENANCY_MOVE_PURGE_GRACE_SECONDS = env.int("TENANCY_MOVE_PURGE_GRACE_SECONDS", default=3600)
TENANCY_MOVE_ID_HEADROOM = env.int("TENANCY_MOVE_ID_HEADROOM", default=1_000_000)
# Deletion: how long a deleted tenant stays restorable, and how many tables one transaction drops.
TENANCY_DELETE_GRACE_SECONDS = env.int("TENANCY_DELETE_GRACE_SECONDS", default=7 * 24 * 3600)
TENANCY_DELETE_TABLES_PER_TRANSACTION = env.int("TENANCY_DELETE_TABLES_PER_TRANSACTION", default=200)
# Tenant exports (docs/lifecycle.md): where the files live, how long the owner's link to the final
# export of an offboarding works at most (it also ends with the grace period), and how often the
# schedule looks for tenants whose newest export is older than half their plan's RPO
# (COMPLIANCE_RPO_HOURS).
TENANCY_EXPORTS_DIR = env.str("TENANCY_EXPORTS_DIR", default=str(DATA_DIR / "exports"))
TENANCY_EXPORT_SCHEDULE_SECONDS = env.float("TENANCY_EXPORT_SCHEDULE_SECONDS", default=900.0)
# Database servers are rows of the server registry (tenants.Server; docs/tenancy.md "Several PostgreSQL
# servers"): `default` is this one, seeded with this capacity (placements); others are registered.
TENANCY_DEFAULT_SERVER_CAPACITY = env.int("TENANCY_DEFAULT_SERVER_CAPACITY", default=100_000)
# Name of the database holding pools and own schemas on every server but `default` (prefixed with the
# control-plane database's name, so two control planes never share one).
TENANCY_SERVER_DATA_DATABASE_SUFFIX = "_tenant_data"
# How often a job probes every server (reachable, latency, backends vs max_connections) for the overview.
TENANCY_SERVER_HEALTH_INTERVAL_SECONDS = env.float("TENANCY_SERVER_HEALTH_INTERVAL_SECONDS", default=60.0)

# --- Auth -------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"
# Sign-in lockout (core/limits.py), operators and workspace members alike: failures are counted per
# account *and* client address in the shared `limits` cache. After LOGIN_FAILURE_FREE failures each
# one doubles the wait (1 s, 2 s, 4 s … at most LOGIN_FAILURE_MAX_DELAY_SECONDS); at
# LOGIN_FAILURE_LIMIT the pair is locked for LOGIN_FAILURE_WINDOW_SECONDS. One address failing
# against many accounts stops at LOGIN_FAILURE_IP_LIMIT.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_FAILURE_FREE = env.int("LOGIN_FAILURE_FREE", default=3)
LOGIN_FAILURE_MAX_DELAY_SECONDS = env.int("LOGIN_FAILURE_MAX_DELAY_SECONDS", default=60)
LOGIN_FAILURE_IP_LIMIT = env.int("LOGIN_FAILURE_IP_LIMIT", default=100)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=15 * 60)
# Workspace members' emailed links (workspace/members.py): single-use, expiring, bound to the tenant.
WORKSPACE_INVITE_MAX_AGE_SECONDS = env.int("WORKSPACE_INVITE_MAX_AGE_SECONDS", default=7 * 24 * 3600)
WORKSPACE_RESET_MAX_AGE_SECONDS = env.int("WORKSPACE_RESET_MAX_AGE_SECONDS", default=3600)
# "Forgot password" emails per client address and per account; invitations per workspace.
WORKSPACE_RESET_RATE_LIMIT = env.str("WORKSPACE_RESET_RATE_LIMIT", default="5/h")
WORKSPACE_INVITE_RATE_LIMIT = env.str("WORKSPACE_INVITE_RATE_LIMIT", default="100/h")
# Two-factor sign-in for operators (saas_admin/mfa.py): required for every role unless relaxed for Viewers.
MFA_REQUIRED = env.bool("MFA_REQUIRED", default=True)
MFA_REQUIRED_FOR_VIEWERS = env.bool("MFA_REQUIRED_FOR_VIEWERS", default=True)
OTP_TOTP_ISSUER = "Control plane"
# django-otp's own throttle is per device: anyone who knows a username could slow its owner down.
# Wrong codes are limited per operator *and* address instead (core/limits.py, saas_admin/mfa.py).
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
OTP_WEBAUTHN_RP_ID = BASE_DOMAIN
OTP_WEBAUTHN_RP_NAME = "Control plane"
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False  # a passkey is a second factor here, after the password
OTP_WEBAUTHN_HELPER_CLASS = "saas_admin.mfa.WebAuthnHelper"
# Origins passkeys are used from (the dashboard's own origin is always accepted, see saas_admin/mfa.py).
OTP_WEBAUTHN_ALLOWED_ORIGINS = env.list(
    "OTP_WEBAUTHN_ALLOWED_ORIGINS", default=[f"http://{BASE_DOMAIN}:{env.str('PORT', default='8000')}"]
)
# Caches: shared by every process, never per-process memory. Redis when CACHE_REDIS_URL is set, else
# tables in PostgreSQL (created by migration saas_admin/0003). `limits` holds rate limits and lockout
# counters of operators, `tenant_limits` those of workspace members (writable by the data-plane role);
# `manage.py limits_clear` empties both.
CACHE_REDIS_URL = env.str("CACHE_REDIS_URL", default="")


def _cache(table: str, prefix: str) -> dict:
    if CACHE_REDIS_URL:
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_REDIS_URL,
            "KEY_PREFIX": prefix,
        }
    # Django culls a third of a database cache past MAX_ENTRIES (default 300): with a counter per tenant and
    # minute (request limits) and a slot per process and hour (usage recording), live keys would go.
    return {
        "BACKEND": "core.cache.JSONDatabaseCache",
        "LOCATION": table,
        "KEY_PREFIX": prefix,
        "OPTIONS": {"MAX_ENTRIES": 200_000},
    }


CACHES = {
    "default": _cache("cache_default", "default"),
    "limits": _cache("limits_cache", "limits"),
    "tenant_limits": _cache("tenant_limits_cache", "tenant_limits"),
}
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 60 * 60)
SESSION_COOKIE_SAMESITE = "Lax"

# --- I18N / static ----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# Development mailbox (saas_admin/devmail.py): where MailboxBackend keeps every email it "sends".
DEV_MAILBOX_DIR = env.str("DEV_MAILBOX_DIR", default=str(DATA_DIR / "mailbox"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="control-plane@localhost")

# --- Data-subject rights (docs/privacy.md) -----------------------------------
# Where access-request bundles (ZIP) wait for their download; erasure and retention delete them.
PRIVACY_BUNDLE_DIR = env.str("PRIVACY_BUNDLE_DIR", default=str(DATA_DIR / "dsar"))
# A download link works once, for this long.
PRIVACY_LINK_TTL_SECONDS = env.int("PRIVACY_LINK_TTL_SECONDS", default=24 * 3600)
# Art. 12(3): answer within a month.
PRIVACY_SLA_DAYS = 30
# Erasures opened by an operator wait for a second Admin to approve them (four eyes) when true.
PRIVACY_ERASURE_REQUIRE_APPROVAL = env.bool("PRIVACY_ERASURE_REQUIRE_APPROVAL", default=False)

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = broker_url()
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(DATA_DIR / "celery" / "queue"),
        "data_folder_out": str(DATA_DIR / "celery" / "queue"),
        "processed_folder": str(DATA_DIR / "celery" / "processed"),
        # Without this the transport writes its control files into the working directory.
        "control_folder": str(DATA_DIR / "celery" / "control"),
        "store_processed": False,
        # The default 1 s poll would dominate sub-second provisioning.
        "polling_interval": 0.1,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": 3600}
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {}

# --- Logging ----------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- API ----------------------------------------------------------------------
NINJA_PAGINATION_PER_PAGE = 50

# --- The job engine (jobs/, docs/jobs.md): every long-running job ----------------
# A running job renews its lease every JOBS_HEARTBEAT_SECONDS (at most a third of the lease);
# a job whose lease ran out has lost its worker and the sweeper hands it to another attempt.
JOBS_LEASE_SECONDS = env.float("JOBS_LEASE_SECONDS", default=60.0)
JOBS_HEARTBEAT_SECONDS = env.float("JOBS_HEARTBEAT_SECONDS", default=1.0)
JOBS_MAX_ATTEMPTS = env.int("JOBS_MAX_ATTEMPTS", default=3)
JOBS_RETRY_BACKOFF_SECONDS = env.float("JOBS_RETRY_BACKOFF_SECONDS", default=2.0)
JOBS_RETRY_BACKOFF_MAX_SECONDS = env.float("JOBS_RETRY_BACKOFF_MAX_SECONDS", default=300.0)
# A queued job nobody claimed for this long may have lost its message: the sweeper sends it again.
JOBS_QUEUED_GRACE_SECONDS = env.float("JOBS_QUEUED_GRACE_SECONDS", default=60.0)
JOBS_SWEEP_INTERVAL_SECONDS = env.float("JOBS_SWEEP_INTERVAL_SECONDS", default=15.0)
# A worker runs a job's follow-up (the next saga step) itself instead of sending a message.
JOBS_CHAIN = env.bool("JOBS_CHAIN", default=True)
# Dotted path of a fault-injection hook; only saas_admin/settings/test.py sets one.
JOBS_FAULT_HOOK = ""
CELERY_BEAT_SCHEDULE["jobs-sweep"] = {"task": "jobs.sweep", "schedule": JOBS_SWEEP_INTERVAL_SECONDS}
# Retention purges (privacy/retention.py): the day's jobs; hourly so a missed beat catches up the same day.
CELERY_BEAT_SCHEDULE["privacy-retention"] = {"task": "privacy.retention_schedule", "schedule": 3600.0}
# Requests workspace admins filed in their placement (privacy/intake.py).
CELERY_BEAT_SCHEDULE["privacy-intake"] = {"task": "privacy.intake_sweep", "schedule": 60.0}
# Scheduled tenant exports per plan (tenants/exports/schedule.py).
CELERY_BEAT_SCHEDULE["tenant-exports"] = {
    "task": "tenants.exports_schedule",
    "schedule": TENANCY_EXPORT_SCHEDULE_SECONDS,
}

# --- Sagas / signup (sagas/, docs/sagas.md) ----------------------------------------
SAGA_STEP_LEASE_SECONDS = env.float("SAGA_STEP_LEASE_SECONDS", default=60.0)
SAGA_MAX_ATTEMPTS = env.int("SAGA_MAX_ATTEMPTS", default=3)
SAGA_MAX_COMPENSATE_ATTEMPTS = env.int("SAGA_MAX_COMPENSATE_ATTEMPTS", default=5)
# Which isolation level a plan gets on self-signup (operators choose freely).
TENANCY_PLAN_ISOLATION = {"free": "shared", "team": "shared", "business": "schema", "enterprise": "dedicated"}
SIGNUP_RATE_LIMIT = env.str("SIGNUP_RATE_LIMIT", default="5/h")  # signups per IP address
SIGNUP_TOKEN_MAX_AGE_SECONDS = env.int("SIGNUP_TOKEN_MAX_AGE_SECONDS", default=2 * 24 * 3600)

# Tests run a private worker against a private filesystem broker folder.
if CELERY_BROKER_URL.startswith("filesystem") and env.str("CELERY_FILESYSTEM_FOLDER", default=""):
    _folder = env.str("CELERY_FILESYSTEM_FOLDER")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": f"{_folder}/queue",
        "data_folder_out": f"{_folder}/queue",
        "processed_folder": f"{_folder}/processed",
        "control_folder": f"{_folder}/control",
        "store_processed": False,
        "polling_interval": 0.05,
    }
# --- Cross-tenant migrations (migration_runs, docs/migration_runs.md) ----------
MIGRATIONS_MAX_PER_SERVER = env.int("MIGRATIONS_MAX_PER_SERVER", default=4)  # concurrent jobs per database server
MIGRATIONS_REQUIRE_APPROVAL = env.bool("MIGRATIONS_REQUIRE_APPROVAL", default=False)  # four-eyes: a second Admin
MIGRATIONS_JOB_LEASE_SECONDS = env.float("MIGRATIONS_JOB_LEASE_SECONDS", default=60.0)  # renewed while running
MIGRATIONS_JOB_MAX_ATTEMPTS = env.int("MIGRATIONS_JOB_MAX_ATTEMPTS", default=3)  # lost workers before "failed"
# Placements one job migrates one after another (per-job bookkeeping is paid once for all of them).
MIGRATIONS_PLACEMENTS_PER_JOB = env.int("MIGRATIONS_PLACEMENTS_PER_JOB", default=25)
# How often every placement's migrations are read and compared with the control plane's record.
MIGRATIONS_VERIFY_INTERVAL_SECONDS = env.float("MIGRATIONS_VERIFY_INTERVAL_SECONDS", default=3600.0)
CELERY_BEAT_SCHEDULE["servers-health"] = {
    "task": "tenants.servers_health",
    "schedule": TENANCY_SERVER_HEALTH_INTERVAL_SECONDS,
}
CELERY_BEAT_SCHEDULE["migration-state-verify"] = {
    "task": "migration_runs.verify",
    "schedule": MIGRATIONS_VERIFY_INTERVAL_SECONDS,
}
# Event store: async projections follow the gap-safe feed; one pg_notify per poll when they advanced.
CELERY_BEAT_SCHEDULE["events-projections"] = {"task": "events.projections_catch_up", "schedule": 10.0}
EVENTS_NOTIFY = env.str("EVENTS_NOTIFY", default="off")  # "transaction": also notify from appends (see docs/events.md)
# Tests and benches only: extra/replacement migration modules as JSON, e.g. a throwaway workspace migration.
MIGRATION_MODULES = env.json("DJANGO_MIGRATION_MODULES", default={})

# --- Compliance (compliance/, docs/compliance.md) -------------------------------
# How often beat looks for controls whose frequency says they are due (each evaluation is a job).
COMPLIANCE_SCHEDULE_SECONDS = env.float("COMPLIANCE_SCHEDULE_SECONDS", default=300.0)
CELERY_BEAT_SCHEDULE["compliance-evaluate-due"] = {
    "task": "compliance.evaluate_due",
    "schedule": COMPLIANCE_SCHEDULE_SECONDS,
}
COMPLIANCE_JOB_LEASE_SECONDS = env.float("COMPLIANCE_JOB_LEASE_SECONDS", default=120.0)
COMPLIANCE_ACCESS_REVIEW_DAYS = env.int("COMPLIANCE_ACCESS_REVIEW_DAYS", default=90)  # check access_review
COMPLIANCE_INACTIVE_DAYS = env.int("COMPLIANCE_INACTIVE_DAYS", default=90)  # check stale_access
COMPLIANCE_AUDIT_RETENTION_DAYS = env.int("COMPLIANCE_AUDIT_RETENTION_DAYS", default=365)  # check audit_retention
# Event-log chains are verified incrementally; each log is re-verified from its start this often.
COMPLIANCE_CHAIN_FULL_HOURS = env.float("COMPLIANCE_CHAIN_FULL_HOURS", default=24.0)
COMPLIANCE_SIGNIN_SPIKE = env.int("COMPLIANCE_SIGNIN_SPIKE", default=10)  # failures per hour per name or address
COMPLIANCE_DSAR_SLA_DAYS = env.int("COMPLIANCE_DSAR_SLA_DAYS", default=30)
# Recovery point objective per plan, in hours (check backups_rpo).
COMPLIANCE_RPO_HOURS = {"free": 168, "team": 24, "business": 24, "enterprise": 4}

# --- Usage, quotas, metering, webhooks, metrics (usage/, webhooks/, docs/usage.md) ----------------
# Quotas per plan (None: unlimited), enforced in the workspace (workspace/quotas.py) and on tenant
# hosts (requests per minute, core/limits.py); warnings at 80 % and 100 % (usage collector).
USAGE_PLAN_QUOTAS = env.json(
    "USAGE_PLAN_QUOTAS",
    default={
        "free": {"members": 25, "storage_bytes": 100 * 2**20, "requests_per_minute": 600, "events_per_day": 2000},
        "team": {"members": 250, "storage_bytes": 2 * 2**30, "requests_per_minute": 3000, "events_per_day": 50000},
        "business": {
            "members": 2500,
            "storage_bytes": 20 * 2**30,
            "requests_per_minute": 12000,
            "events_per_day": 500000,
        },
        "enterprise": {"members": None, "storage_bytes": None, "requests_per_minute": None, "events_per_day": None},
    },
)
# statement_timeout / work_mem inside each request transaction on a tenant's host, per plan.
USAGE_PLAN_DB_SETTINGS = env.json(
    "USAGE_PLAN_DB_SETTINGS",
    default={
        "free": {"statement_timeout": "5s", "work_mem": "4MB"},
        "team": {"statement_timeout": "10s", "work_mem": "8MB"},
        "business": {"statement_timeout": "30s", "work_mem": "16MB"},
        "enterprise": {"statement_timeout": "60s", "work_mem": "64MB"},
    },
)
# Per-tenant request counts and latency buckets (core/requestmeter.py): on/off, flush interval, cache.
USAGE_REQUEST_RECORDING = env.bool("USAGE_REQUEST_RECORDING", default=True)
USAGE_FLUSH_SECONDS = env.float("USAGE_FLUSH_SECONDS", default=2.0)
USAGE_CACHE_ALIAS = "default"
# How often beat starts a usage collection job (every tenant, current hour and day).
USAGE_COLLECT_INTERVAL_SECONDS = env.float("USAGE_COLLECT_INTERVAL_SECONDS", default=300.0)
CELERY_BEAT_SCHEDULE["usage-collect"] = {"task": "usage.collect", "schedule": USAGE_COLLECT_INTERVAL_SECONDS}
# Outgoing webhooks: request timeout, attempts per delivery (backoff doubles from the base), and how
# long a rotated-out secret still signs (so receivers can switch without missing deliveries).
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_BACKOFF_SECONDS = env.float("WEBHOOK_BACKOFF_SECONDS", default=10.0)
WEBHOOK_SECRET_OVERLAP_HOURS = env.int("WEBHOOK_SECRET_OVERLAP_HOURS", default=24)
# /metrics (Prometheus): a bearer token, or client addresses in these networks; neither set: 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
