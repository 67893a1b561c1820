"""Fernet encryption for credentials at rest (key: settings.FIELD_ENCRYPTION_KEY).

`FIELD_ENCRYPTION_KEY` is one Fernet key, or several separated by commas during a rotation: the
first encrypts, every one of them decrypts (MultiFernet). Rotating:

    FIELD_ENCRYPTION_KEY=<new>,<old>  manage.py rotate_encryption_key   # re-encrypts everything stored
    FIELD_ENCRYPTION_KEY=<new>                                         # then drop the old key

An invalid key is one clear sentence at start-up (tenants.apps) and in `check --deploy`
(tenants.checks), never a ValueError in the middle of a signup. Development and tests fall back to
a key derived from SECRET_KEY; production settings require the variable. Plain text never reaches
the database or logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


def key_list(value: str) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def key_problem(value: str) -> str | None:
    """One sentence saying what is wrong with a FIELD_ENCRYPTION_KEY value, or None if it is usable."""
    for position, key in enumerate(key_list(value), start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            which = "FIELD_ENCRYPTION_KEY" if position == 1 else f"Key {position} of FIELD_ENCRYPTION_KEY"
            return (
                f"{which} is not a valid Fernet key (32 bytes, URL-safe base64, 44 characters); generate one with "
                '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.'
            )
    return None


@lru_cache(maxsize=4)
def _fernet(value: str, secret: str) -> MultiFernet:
    keys = key_list(value)
    if keys:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    derived = hashlib.sha256(b"tenants.crypto:" + secret.encode()).digest()
    return MultiFernet([Fernet(base64.urlsafe_b64encode(derived))])


def fernet() -> MultiFernet:
    return _fernet(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY)


def encrypt_json(value: dict[str, Any]) -> str:
    return fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(token: str) -> dict[str, Any]:
    if not token:
        return {}
    return json.loads(fernet().decrypt(token.encode()))


def rotate(token: str) -> str:
    """The same plaintext, encrypted with the first key (any listed key may have encrypted it)."""
    return fernet().rotate(token.encode()).decode() if token else token
