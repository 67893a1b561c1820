"""Rate limits and sign-in lockouts, counted in a shared cache (never per-process memory).

The counters live in the cache alias `limits` (settings.CACHES): Redis when `CACHE_REDIS_URL` is
set, otherwise a table in PostgreSQL (Django's database cache). Either way every web process and
host sees the same numbers, and a restart forgets nothing. `manage.py limits_clear` empties them.

Three tools:

- `rate_limit_hit(bucket, key, limit=5, window=3600)`: a fixed-window counter (signups, password
  reset emails, invitations per address). True once `key` went over `limit` in the window.
- `rate_limit_leased_hit(bucket, key, limit=…, window=60, lease=…)`: the same budget for hot paths
  (requests per tenant on its host), taken from the shared counter `lease` units at a time.
- sign-in lockout, counted per account *and* client address, so an attacker who guesses wrong
  from their own address locks only themselves out, never the account's owner elsewhere:

      wait = signin_wait(scope, account, address)      # seconds to wait before checking a password
      signin_failed(scope, account, address)           # after a wrong password: the next delay
      signin_succeeded(scope, account, address)        # forget the pair's failures

  After `free` failures each further one doubles the delay (1 s, 2 s, 4 s … up to the window);
  at `limit` failures the pair is locked for the whole window. `signin_locks(scope, account)` lists
  the addresses locked out of an account (the Operators screen), `signin_unlock` clears them all.
  An address that fails against many accounts is limited too (`address_limit` per window).

Every function takes `cache=`: the operator side counts in `limits`; workspace members (requests on
tenant hosts, on the data-plane role) count in `tenant_limits` (`cache=TENANT_ALIAS`), the one
control-plane table that role may write.

Keys are hashed: no username or address is readable in the cache.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches

ALIAS = "limits"
TENANT_ALIAS = "tenant_limits"
_INDEX_CAP = 50  # addresses remembered per account for the lock list


def _cache(alias: str = ALIAS) -> Any:
    return caches[alias]


def _h(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


# --- fixed-window rate limits ---------------------------------------------------------------------


def rate_limit_hit(bucket: str, key: str, *, limit: int, window: int, cache: str = ALIAS) -> bool:
    """Count one event for `key` in `bucket`; True once more than `limit` happened in this window."""
    cache_key = f"rl:{bucket}:{_h(key or 'unknown')}:{int(time.time() // window)}"
    store = _cache(cache)
    store.add(cache_key, 0, timeout=window)
    try:
        count = store.incr(cache_key)
    except ValueError:  # expired between add and incr
        store.set(cache_key, 1, timeout=window)
        count = 1
    return count > limit


_leases: dict[tuple[str, str, int], int] = {}
_leases_lock = threading.Lock()


def rate_limit_leased_hit(bucket: str, key: str, *, limit: int, window: int, lease: int) -> bool:
    """Like `rate_limit_hit`, for hot paths (requests per tenant): the process takes `lease` units of the
    shared window's budget at once (one cache increment) and spends them locally. Never admits more than
    `limit` per window over all processes; a process's unspent units of a window are lost at its end, so a
    busy tenant on many processes may be refused slightly early. lease=1 is exact counting."""
    index = int(time.time() // window)
    slot = (bucket, key, index)
    with _leases_lock:
        left = _leases.get(slot, 0)
        if left > 0:
            _leases[slot] = left - 1
            return False
    cache_key = f"rl:{bucket}:{_h(key or 'unknown')}:{index}"
    cache = _cache()
    cache.add(cache_key, 0, timeout=window)
    try:
        count = cache.incr(cache_key, lease)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, lease, timeout=window)
        count = lease
    granted = min(lease, max(0, limit - (count - lease)))
    if granted <= 0:
        return True
    with _leases_lock:
        for stale in [s for s in _leases if s[2] < index]:
            del _leases[stale]
        _leases[slot] = _leases.get(slot, 0) + granted - 1
    return False


def parse_rate(value: str) -> tuple[int, int]:
    """ "5/h" → (5, 3600); units s, m, h, d."""
    count, _, unit = value.partition("/")
    return int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit or "h"]


# --- sign-in lockout --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    limit: int  # failures of one account from one address before the pair is locked for the window
    free: int  # failures before the progressive delay starts
    window: int  # seconds a failure is remembered (and a lock lasts)
    address_limit: int  # failures from one address over all accounts in the window
    max_delay: int  # the progressive delay never exceeds this


def policy() -> Policy:
    window = int(settings.LOGIN_FAILURE_WINDOW_SECONDS)
    return Policy(
        limit=int(settings.LOGIN_FAILURE_LIMIT),
        free=int(settings.LOGIN_FAILURE_FREE),
        window=window,
        address_limit=int(settings.LOGIN_FAILURE_IP_LIMIT),
        max_delay=min(window, int(settings.LOGIN_FAILURE_MAX_DELAY_SECONDS)),
    )


def _norm(account: str) -> str:
    return (account or "").strip().lower()[:254]


def _pair_key(scope: str, account: str, address: str | None) -> str:
    return f"lk:{scope}:{_h(_norm(account))}:{_h(address or 'unknown')}"


def _index_key(scope: str, account: str) -> str:
    return f"lki:{scope}:{_h(_norm(account))}"


def _address_key(scope: str, address: str | None) -> str:
    return f"lka:{scope}:{_h(address or 'unknown')}"


def signin_wait(scope: str, account: str, address: str | None, *, cache: str = ALIAS) -> float:
    """Seconds this (account, address) must wait before a password may be checked; 0 when it may now."""
    now = time.time()
    pair = _cache(cache).get(_pair_key(scope, account, address)) or {}
    wait = max(0.0, float(pair.get("until", 0)) - now)
    if address:
        spread = _cache(cache).get(_address_key(scope, address)) or {}
        if int(spread.get("n", 0)) >= policy().address_limit:
            wait = max(wait, float(spread.get("until", 0)) - now)
    return wait


def delay_after(failures: int, p: Policy) -> int:
    """Seconds to wait after `failures` consecutive failures of one pair."""
    if failures >= p.limit:
        return p.window
    if failures < p.free:
        return 0
    return min(p.max_delay, 2 ** (failures - p.free))


def signin_failed(
    scope: str, account: str, address: str | None, *, label: str = "", cache: str = ALIAS
) -> tuple[int, int]:
    """Record a wrong password; returns (failures of this pair, seconds until the next try)."""
    p = policy()
    store, now = _cache(cache), time.time()
    key = _pair_key(scope, account, address)
    pair = store.get(key) or {}
    failures = int(pair.get("n", 0)) + 1
    delay = delay_after(failures, p)
    store.set(key, {"n": failures, "until": now + delay}, timeout=p.window)
    index = store.get(_index_key(scope, account)) or {}
    index[address or "unknown"] = {"n": failures, "until": now + delay, "at": now, "label": label[:150]}
    if len(index) > _INDEX_CAP:
        index = dict(sorted(index.items(), key=lambda kv: kv[1]["at"])[-_INDEX_CAP:])
    store.set(_index_key(scope, account), index, timeout=p.window)
    if address:
        akey = _address_key(scope, address)
        spread = store.get(akey) or {}
        n = int(spread.get("n", 0)) + 1
        store.set(akey, {"n": n, "until": now + p.window if n >= p.address_limit else 0}, timeout=p.window)
    return failures, delay


def signin_succeeded(scope: str, account: str, address: str | None, *, cache: str = ALIAS) -> None:
    store = _cache(cache)
    store.delete(_pair_key(scope, account, address))
    index = store.get(_index_key(scope, account)) or {}
    if index.pop(address or "unknown", None) is not None:
        store.set(_index_key(scope, account), index, timeout=policy().window)


@dataclass(frozen=True)
class Lock:
    address: str
    failures: int
    until: float

    @property
    def seconds_left(self) -> int:
        return max(0, int(self.until - time.time()))


def signin_locks(scope: str, account: str, *, cache: str = ALIAS) -> list[Lock]:
    """Addresses that are locked out of (or slowed down on) `account` right now, longest wait first."""
    now = time.time()
    index = _cache(cache).get(_index_key(scope, account)) or {}
    locks = [
        Lock(address=address, failures=int(v.get("n", 0)), until=float(v.get("until", 0)))
        for address, v in index.items()
        if float(v.get("until", 0)) > now and int(v.get("n", 0)) >= policy().limit
    ]
    return sorted(locks, key=lambda lock: -lock.until)


def signin_unlock(scope: str, account: str, *, cache: str = ALIAS) -> int:
    """Forget every failure of `account` from every address; returns how many addresses were locked."""
    store = _cache(cache)
    index = store.get(_index_key(scope, account)) or {}
    locked = len(signin_locks(scope, account, cache=cache))
    for address in index:
        store.delete(_pair_key(scope, account, None if address == "unknown" else address))
    store.delete(_index_key(scope, account))
    return locked


def limits_clear() -> None:
    """Forget every counter (manage.py limits_clear; local testing)."""
    _cache().clear()
    with _leases_lock:
        _leases.clear()
