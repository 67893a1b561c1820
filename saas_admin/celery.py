"""Celery bootstrap (cookiecutter-django style): settings under the CELERY_ namespace."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas_admin.settings.development")

app = Celery("saas_admin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def ensure_filesystem_broker_folders() -> None:
    """The filesystem transport needs its folders before the first message, and beat the folder of
    its schedule file (.data/, missing on a fresh clone even when CELERY_BROKER_URL names Redis)."""
    from django.conf import settings  # at call time: Celery imports this module before Django is set up

    Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent.mkdir(parents=True, exist_ok=True)
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if key in options:
            Path(str(options[key])).mkdir(parents=True, exist_ok=True)
