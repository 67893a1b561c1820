"""Django's database cache storing JSON instead of pickles.

The `limits` and `tenant_limits` caches (core/limits.py) are tables that a database role may write
(`tenant_limits_cache`: the data-plane role of tenant hosts). With pickles, whoever can write a row
could make every reader run code; JSON values can only ever be data. Django's DatabaseCache calls
the module-level `pickle`, so its two methods that (de)serialise are rebuilt here with a JSON
stand-in in their globals — the rest (expiry, culling, add/incr) is Django's, unchanged.
"""

from __future__ import annotations

import json
import types
from typing import Any

from django.core.cache.backends import db


class _JSON:
    HIGHEST_PROTOCOL = 0

    @staticmethod
    def dumps(value: Any, protocol: int | None = None) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    @staticmethod
    def loads(data: bytes) -> Any:
        return json.loads(data)


def _with_json(function: Any) -> Any:
    rebuilt = types.FunctionType(
        function.__code__, {**function.__globals__, "pickle": _JSON}, function.__name__, function.__defaults__
    )
    rebuilt.__kwdefaults__ = function.__kwdefaults__
    return rebuilt


class JSONDatabaseCache(db.DatabaseCache):
    pickle_protocol = 0
    get_many = _with_json(db.DatabaseCache.get_many)
    _base_set = _with_json(db.DatabaseCache._base_set)  # type: ignore[attr-defined]  # private in the stubs
