"""Tenant self-signup: request → email verification → provisioning saga → signed-in workspace.

- Nothing is written to the database before the email is verified. The signup itself
  travels in the verification link as a Fernet token (encrypted and authenticated), with
  the password already hashed, so neither the link nor the inbox exposes it.
- Idempotency: the token carries the form's one-time request key, and the saga is
  started with idempotency key `signup:<request key>`. Refreshing, double-clicking or
  following the link twice always lands on the same saga, never a second tenant.
- Rate limit: SIGNUP_RATE_LIMIT verification emails per client IP, counted in the shared `limits`
  cache (core/limits.py): the same across processes and restarts.
- After the saga completes, a one-time signed link signs the owner in on their workspace
  host (the session cookie belongs to `<slug>.BASE_DOMAIN`, so it must be set there).
"""

from __future__ import annotations

import time
from typing import Any

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core import signing
from django.core.mail import send_mail
from django.db import connection
from django.template.loader import render_to_string

from core import limits
from core.actors import SystemActor
from core.errors import InvalidInput
from sagas.models import Saga, SagaState
from tenants.crypto import decrypt_json, encrypt_json
from tenants.provisioning.services import isolation_for_plan, tenant_provision
from tenants.services import workspace_url

WELCOME_SALT = "tenants.signup.welcome"
WELCOME_MAX_AGE = 15 * 60
PROGRESS_SALT = "tenants.signup.progress"


class SignupError(Exception):
    """One sentence for the person signing up."""


# --- rate limit -------------------------------------------------------------------


def signup_rate_limited(ip: str | None) -> bool:
    """Count one attempt for this IP; True once it is over the limit for the window (shared cache)."""
    limit, window = limits.parse_rate(settings.SIGNUP_RATE_LIMIT)
    return limits.rate_limit_hit("signup", ip or "unknown", limit=limit, window=window)


# --- request and verification ----------------------------------------------------------


def signup_request(*, data: dict[str, Any], request_key: str, verify_url: Any) -> str:
    """Email a verification link for a validated signup. Returns the token (tests use it)."""
    token = encrypt_json(
        {
            "name": data["name"],
            "slug": data["slug"],
            "email": data["email"].strip().lower(),
            "plan": data["plan"],
            "pw": make_password(data["password"]),
            "key": str(request_key),
            "iat": int(time.time()),
        }
    )
    link = verify_url(token)
    context = {
        "name": data["name"],
        "slug": data["slug"],
        "link": link,
        "hours": settings.SIGNUP_TOKEN_MAX_AGE_SECONDS // 3600,
    }
    send_mail(
        subject=f"Confirm your workspace {data['slug']}",
        message=render_to_string("emails/signup_verify.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[data["email"]],
    )
    return token


def _decode(token: str) -> dict[str, Any]:
    try:
        data = decrypt_json(token)
    except (InvalidToken, ValueError, TypeError):
        raise SignupError("This confirmation link is not valid; please sign up again.") from None
    if time.time() - data.get("iat", 0) > settings.SIGNUP_TOKEN_MAX_AGE_SECONDS:
        raise SignupError("This confirmation link has expired; please sign up again.")
    return data


def signup_verify(*, token: str) -> Saga:
    """Start (or find) the provisioning saga for a verified signup."""
    data = _decode(token)
    try:
        return tenant_provision(
            slug=data["slug"],
            isolation=isolation_for_plan(data["plan"]),
            name=data["name"],
            plan=data["plan"],
            owner_email=data["email"],
            owner_password_hash=data["pw"],
            idempotency_key=f"signup:{data['key']}",
            actor=SystemActor(f"signup {data['email']}"),
        )
    except InvalidInput as exc:
        raise SignupError(str(exc)) from None


# --- progress and the signed-in hand-over ---------------------------------------------------


def progress_token(saga: Saga) -> str:
    return signing.dumps(str(saga.id), salt=PROGRESS_SALT)


def saga_for_progress_token(token: str) -> Saga | None:
    try:
        saga_id = signing.loads(token, salt=PROGRESS_SALT, max_age=settings.SIGNUP_TOKEN_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    return Saga.objects.filter(id=saga_id, idempotency_key__startswith="signup:").first()


def welcome_url(saga: Saga) -> str:
    token = signing.dumps({"s": str(saga.id), "t": str(saga.tenant_id)}, salt=WELCOME_SALT)
    return workspace_url(saga.tenant_label, f"/welcome/{token}/")


def welcome_consume(*, token: str, tenant: Any) -> str | None:
    """The owner's email if the one-time welcome link is valid for this tenant; marks it used."""
    try:
        data = signing.loads(token, salt=WELCOME_SALT, max_age=WELCOME_MAX_AGE)
    except signing.BadSignature:
        return None
    if tenant is None or data.get("t") != str(tenant.pk):
        return None
    # One use only: a conditional UPDATE that only the first request wins. It runs on the control
    # plane's own connection and returns the email itself: on the tenant's host the router sends every
    # model to the data-plane role, which cannot read sagas (a Saga query here was a 500).
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE public.{Saga._meta.db_table} SET context = context || '{{\"welcome_used\": true}}'::jsonb "  # noqa: S608
            "WHERE id = %s AND state = %s AND NOT (context ? 'welcome_used') RETURNING input ->> 'owner_email'",
            [data["s"], SagaState.COMPLETED],
        )
        row = cursor.fetchone() if cursor.rowcount == 1 else None
    return (row[0] or None) if row else None
