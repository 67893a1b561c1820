"""The personal-data registry: every field that holds personal data, declared once (GDPR Art. 30).

Each app declares its own model fields and event payload fields in a `personal_data.py` module
that its AppConfig.ready() imports:

    from core.personal_data import Category, personal, not_personal, event_personal

    personal("workspace.Member", "email", category=Category.CONTACT, purpose="Sign-in and notices",
             subjects="tenant members", legal_basis="contract", retention="while a member",
             erasure="anonymised by the erasure saga")
    not_personal("workspace.Account", "name", reason="An account's label, not a person.")
    event_personal("member.joined", "member", category=Category.IDENTITY, ...)

The record of processing (privacy app, /privacy/processing/) is generated from this list, and
`tests/test_personal_data.py` fails when a model gains a field that looks personal (email, name,
phone, address, ip, user agent — by name or by field type) that nobody declared either way.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.db import models


class Category(models.TextChoices):
    IDENTITY = "identity", "Identity (name, user name)"
    CONTACT = "contact", "Contact details (email, phone, address)"
    CREDENTIALS = "credentials", "Credentials (password hashes, device names)"
    NETWORK = "network", "Network identifiers (IP address, user agent)"
    ACTIVITY = "activity", "Activity (who did what, when)"
    FINANCIAL = "financial", "Financial records"
    FREE_TEXT = "free_text", "Free text that may mention people"


@dataclass(frozen=True)
class PersonalField:
    kind: str  # "model" or "event"
    owner: str  # "app_label.Model" or an event type
    field: str
    category: str
    purpose: str
    subjects: str
    legal_basis: str
    retention: str
    erasure: str
    location: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_PERSONAL: dict[tuple[str, str, str], PersonalField] = {}
_NOT_PERSONAL: dict[tuple[str, str], str] = {}

# What makes a field *look* personal: its name, or a field type that only ever holds personal data.
LOOKS_PERSONAL = re.compile(r"(e_?mail|name|phone|mobile|address|(^|_)ip($|_)|user_?agent)", re.IGNORECASE)
PERSONAL_TYPES = (models.EmailField, models.GenericIPAddressField)


def personal(
    owner: str,
    field: str,
    *,
    category: str,
    purpose: str,
    subjects: str,
    legal_basis: str,
    retention: str,
    erasure: str,
    location: str = "control plane",
    kind: str = "model",
) -> PersonalField:
    if category not in Category.values:
        raise ValueError(f"Unknown personal-data category {category!r}.")
    entry = PersonalField(kind, owner, field, category, purpose, subjects, legal_basis, retention, erasure, location)
    _PERSONAL[(kind, owner, field)] = entry
    return entry


def event_personal(event_type: str, field: str, **kw: Any) -> PersonalField:
    """A field of an event payload (stored as a per-subject encrypted envelope, events.crypto)."""
    return personal(event_type, field, kind="event", **kw)


def not_personal(owner: str, field: str, *, reason: str) -> None:
    """A field whose name looks personal but is not (a tenant's name, a device's label)."""
    _NOT_PERSONAL[(owner, field)] = reason


def registry() -> list[PersonalField]:
    return sorted(_PERSONAL.values(), key=lambda e: (e.kind, e.owner, e.field))


def is_declared(owner: str, field: str) -> bool:
    return ("model", owner, field) in _PERSONAL or (owner, field) in _NOT_PERSONAL


def looks_personal(field: Any) -> bool:
    return isinstance(field, PERSONAL_TYPES) or bool(LOOKS_PERSONAL.search(field.name))


def undeclared_fields() -> list[str]:
    """Every concrete model field that looks personal and is declared neither way: "app.Model.field"."""
    from django.apps import apps  # at call time: the app registry must be ready

    missing = []
    for model in apps.get_models():
        label = model._meta.label
        for field in model._meta.concrete_fields:
            if looks_personal(field) and not is_declared(label, field.name):
                missing.append(f"{label}.{field.name}")
    return missing


def model_fields(owner: str) -> list[PersonalField]:
    return [e for e in registry() if e.kind == "model" and e.owner == owner]


def subject_ref(tenant_id: Any, email: str) -> str:
    """A data subject's pseudonymous id inside one tenant: a keyed hash of the normalised email.

    It is what events.crypto keys are filed under (`Personal(subject_ref(...), value)`), what the
    audit trail and the erasure proof name, and it is computable from the email alone, so a request
    finds the subject's events even after the member row is gone. Without the secret key it reveals
    nothing; it changes if SECRET_KEY does (docs/privacy.md)."""
    message = f"{tenant_id}:{(email or '').strip().lower()}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"subject:" + message, hashlib.sha256).hexdigest()[:32]
