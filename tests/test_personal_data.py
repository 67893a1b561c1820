"""The personal-data registry is complete: a model field that looks personal must be declared."""

from __future__ import annotations

import pytest
from django.db import models

from core import personal_data
from core.personal_data import Category, looks_personal, registry, undeclared_fields


def test_every_field_that_looks_personal_is_declared_one_way_or_the_other():
    assert undeclared_fields() == [], (
        "Declare these fields in the app's personal_data.py (personal(...) with category and purpose, "
        "or not_personal(..., reason=...)): " + ", ".join(undeclared_fields())
    )


@pytest.mark.parametrize("name", ["email", "contact_email", "full_name", "phone", "postal_address", "ip", "last_ip"])
def test_a_new_personal_looking_field_is_caught(name):
    field = models.CharField(max_length=10)
    field.name = name
    assert looks_personal(field)


def test_a_model_that_gains_an_undeclared_email_field_fails_the_check(monkeypatch):
    from django.apps import apps  # noqa: PLC0415 — the registry is ready inside a test

    member = apps.get_model("workspace", "Member")
    extra = models.EmailField(name="backup_email")
    extra.set_attributes_from_name("backup_email")
    monkeypatch.setattr(member._meta, "concrete_fields", (*member._meta.concrete_fields, extra))
    assert "workspace.Member.backup_email" in undeclared_fields()


def test_ids_and_flags_are_not_mistaken_for_personal_data():
    for name in ("is_admin", "created_at", "balance", "currency", "hash"):
        field = models.CharField(max_length=10)
        field.name = name
        assert not looks_personal(field), name


def test_every_declaration_has_a_known_category_and_a_purpose():
    entries = registry()
    assert {("model", "workspace.Member", "email"), ("event", "member.joined", "member.email")} <= {
        (e.kind, e.owner, e.field) for e in entries
    }
    for entry in entries:
        assert entry.category in Category.values and entry.purpose and entry.legal_basis, entry
    with pytest.raises(ValueError):
        personal_data.personal("x.Y", "z", category="gossip", purpose="p", subjects="s", legal_basis="b",
                               retention="r", erasure="e")  # fmt: skip
