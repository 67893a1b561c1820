"""Development: `make run`. Debug on, everything else as in base."""

from saas_admin.settings.base import *  # noqa: F403
from saas_admin.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
