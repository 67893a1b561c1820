"""Cross-process clearing of the host → tenant cache (tenants.selectors.tenant_for_host).

Each process that resolves hosts starts one daemon thread (on its first lookup) that LISTENs on
`tenant_hosts` with its own connection and clears the process's cache on every notification; a
move's switch (tenants.moves.fence.hosts_changed) notifies in its transaction, so every process
forgets the old placement when it commits instead of after TENANCY_HOST_CACHE_SECONDS. When the
listener's connection drops it clears the cache and reconnects; the TTL stays as the backstop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
from django.conf import settings
from django.db import connections

from core import dbroles

logger = logging.getLogger(__name__)
CHANNEL = "tenant_hosts"
_lock = threading.Lock()
_started = False


def ensure_listener(clear: Callable[[], None]) -> None:
    global _started
    if _started or not settings.TENANCY_HOST_CACHE_LISTEN or settings.TENANCY_HOST_CACHE_SECONDS <= 0:
        return
    with _lock:
        if _started:
            return
        _started = True
        info = dbroles.conninfo(connections.settings["default"])
        threading.Thread(target=_listen, args=(info, clear), daemon=True, name="tenant-host-cache").start()


def _listen(info: dict, clear: Callable[[], None], stop: threading.Event | None = None) -> None:
    """Clear on every notification until `stop` is set (never, in a web process)."""
    while stop is None or not stop.is_set():
        try:
            with psycopg.connect(**info, autocommit=True) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                clear()  # whatever changed while nobody listened
                while stop is None or not stop.is_set():
                    for _ in conn.notifies(timeout=1.0):
                        clear()
        except Exception:  # a dropped connection must not end the thread; the TTL covers the gap
            logger.warning("host cache listener lost its connection; reconnecting", exc_info=True)
            clear()
            time.sleep(1.0)
