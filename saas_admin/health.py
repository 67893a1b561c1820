"""Health of what the control plane needs: the database and the broker (for /healthz and the overview)."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from kombu import Connection


def database_status() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, "ok"
    except Exception as exc:  # noqa: BLE001 - health checks report, never raise
        return False, exc.__class__.__name__


def broker_status() -> tuple[bool, str]:
    """Open a fresh connection to the configured broker (never the Celery app's pools)."""
    try:
        with Connection(
            settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS, connect_timeout=2
        ) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0.2, timeout=2)
        return True, "ok"
    except Exception as exc:  # noqa: BLE001
        return False, exc.__class__.__name__
