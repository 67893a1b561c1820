"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>", with the timestamp in the header.

    Webhook-Signature: t=1733371200,v1=5257a869…[,v1=<signature with the previous secret>]

While a rotated-out secret is still valid, every delivery carries one `v1` per secret, so a receiver
verifying with either secret accepts it. Receivers should reject timestamps older than a few minutes
(replay protection) — `verify` does, with `tolerance` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Webhook-Signature"


def sign(body: bytes, secret: str, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def header_value(body: bytes, secrets: list[str], timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={t}", *(f"v1={sign(body, s, t)}" for s in secrets)])


def verify(body: bytes, header: str, secret: str, *, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does: the header's timestamp is recent and one of its v1 signatures matches."""
    parts = [p.split("=", 1) for p in (header or "").split(",") if "=" in p]
    stamps = [v for k, v in parts if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    t = int(stamps[0])
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = sign(body, secret, t)
    return any(hmac.compare_digest(expected, v) for k, v in parts if k == "v1")
