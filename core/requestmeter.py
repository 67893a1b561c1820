"""Requests and latency per tenant, recorded by the tenancy middleware into the shared cache.

The hot path (`record`) only updates a dict in this process's memory: one count and one latency
bucket per tenant and hour. At most every `USAGE_FLUSH_SECONDS` the process writes its *cumulative*
figures for the hour into its own slot in the shared cache (`USAGE_CACHE_ALIAS`): a slot is claimed
once per process and hour with an atomic `add`, so no two processes ever write the same key, no
read-modify-write races across processes, and a flush is idempotent (it overwrites with totals).
The usage collector (`usage.collection`, run by beat) sums the slots of an hour with one
`get_many` (`read_hour`) and stores hourly rollups.

What a crash loses: a dying process's figures since its last flush (at most `USAGE_FLUSH_SECONDS`).
Latency percentiles come from fixed buckets (`BOUNDS_MS`), so hours and days merge exactly by
adding bucket counts; p50/p95 are interpolated inside the bucket (`percentile`).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches

BOUNDS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)  # upper bounds; one more bucket above
BUCKETS = len(BOUNDS_MS) + 1
MAX_SLOTS = 256  # processes per hour that can record (web processes × restarts); more are dropped, logged
_TTL = 3 * 24 * 3600
# One entry per tenant: [requests, last request (epoch seconds), bucket 0 … bucket N].
_LAST = 1
_FIRST_BUCKET = 2


class _Buffer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.token = secrets.token_hex(8)
        self.hours: dict[int, dict[str, list[float]]] = {}
        self.dirty: set[int] = set()
        self.slots: dict[int, int | None] = {}
        self.last_flush = time.monotonic()


_buffer = _Buffer()


def _cache() -> Any:
    return caches[settings.USAGE_CACHE_ALIAS]


def hour_of(epoch: float) -> int:
    return int(epoch // 3600)


def bucket_of(elapsed_ms: float) -> int:
    for i, bound in enumerate(BOUNDS_MS):
        if elapsed_ms <= bound:
            return i
    return len(BOUNDS_MS)


def _fresh_after_fork() -> _Buffer:
    global _buffer
    if _buffer.pid != os.getpid():  # a forked worker must not write its parent's slot
        _buffer = _Buffer()
    return _buffer


def record(tenant_id: Any, elapsed_ms: float, *, now: float | None = None) -> None:
    """Count one request of `tenant_id` that took `elapsed_ms`; flushes at most every USAGE_FLUSH_SECONDS."""
    if not settings.USAGE_REQUEST_RECORDING:
        return
    buf = _fresh_after_fork()
    epoch = time.time() if now is None else now
    hour = hour_of(epoch)
    key = str(tenant_id)
    with buf.lock:
        tenants = buf.hours.setdefault(hour, {})
        entry = tenants.get(key)
        if entry is None:
            entry = tenants[key] = [0, 0.0] + [0] * BUCKETS
        entry[0] += 1
        entry[_LAST] = epoch
        entry[_FIRST_BUCKET + bucket_of(elapsed_ms)] += 1
        buf.dirty.add(hour)
        due = time.monotonic() - buf.last_flush >= settings.USAGE_FLUSH_SECONDS
    if due:
        flush()


def _slot(buf: _Buffer, hour: int) -> int | None:
    if hour in buf.slots:
        return buf.slots[hour]
    cache = _cache()
    slot = None
    for i in range(MAX_SLOTS):
        if cache.add(f"usage:req:{hour}:slot:{i}", buf.token, timeout=_TTL):
            slot = i
            break
    buf.slots[hour] = slot
    return slot


def flush() -> int:
    """Write this process's cumulative figures of every changed hour to its slots; returns hours written."""
    buf = _fresh_after_fork()
    with buf.lock:
        hours = {hour: {k: list(v) for k, v in buf.hours.get(hour, {}).items()} for hour in buf.dirty}
        buf.dirty.clear()
        buf.last_flush = time.monotonic()
        current = hour_of(time.time())
        for hour in [h for h in buf.hours if h < current - 1]:  # written already; keep memory bounded
            if hour not in hours:
                buf.hours.pop(hour, None)
                buf.slots.pop(hour, None)
    cache = _cache()
    written = 0
    for hour, data in hours.items():
        slot = _slot(buf, hour)
        if slot is None:
            continue
        cache.set(f"usage:req:{hour}:data:{slot}", data, timeout=_TTL)
        written += 1
    return written


def read_hour(hour: int) -> dict[str, dict[str, Any]]:
    """Every process's figures for `hour`, summed per tenant: {tenant_id: {requests, last, buckets}}."""
    keys = [f"usage:req:{hour}:data:{i}" for i in range(MAX_SLOTS)]
    totals: dict[str, dict[str, Any]] = {}
    for data in _cache().get_many(keys).values():
        for tenant, entry in (data or {}).items():
            total = totals.setdefault(tenant, {"requests": 0, "last": 0.0, "buckets": [0] * BUCKETS})
            total["requests"] += int(entry[0])
            total["last"] = max(total["last"], float(entry[_LAST]))
            for i, n in enumerate(entry[_FIRST_BUCKET : _FIRST_BUCKET + BUCKETS]):
                total["buckets"][i] += int(n)
    return totals


def percentile(buckets: list[int], q: float) -> float | None:
    """The q-quantile (0 < q < 1) in milliseconds, interpolated inside its bucket; None without requests."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            low = 0.0 if i == 0 else float(BOUNDS_MS[i - 1])
            high = float(BOUNDS_MS[i]) if i < len(BOUNDS_MS) else low * 2
            return round(low + (high - low) * ((rank - seen) / n), 1)
        seen += n
    return float(BOUNDS_MS[-1]) * 2


def reset_for_tests() -> None:
    """Forget this process's buffer (tests that count requests from zero)."""
    global _buffer
    _buffer = _Buffer()
