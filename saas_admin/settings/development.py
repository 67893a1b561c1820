"""Development: `make run`. Debug on; emails land in the .data/mailbox/ Outbox; everything else as in base."""

from saas_admin.settings.base import *  # noqa: F403
from saas_admin.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# Every email (web and worker) is kept in .data/mailbox/ and shown on /outbox/ (saas_admin/devmail.py).
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="saas_admin.devmail.MailboxBackend")
