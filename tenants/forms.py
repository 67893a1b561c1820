"""Forms for self-signup (public), operator provisioning and renaming (dashboard)."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError

from tenants.models import Tenant
from tenants.servers import CAPACITY_MAX
from tenants.validation import validate_slug


def _slug_field() -> forms.CharField:
    return forms.CharField(
        max_length=40,
        help_text="Your workspace address: <slug>.localhost. Lowercase letters, digits and hyphens.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class _SlugMixin:
    cleaned_data: dict

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"].strip().lower()
        validate_slug(slug)
        if Tenant.objects.filter(slug=slug).exists():
            raise ValidationError(f"The address “{slug}” is already taken; please choose another.")
        return slug


class SignupForm(_SlugMixin, forms.Form):
    name = forms.CharField(label="Organisation name", max_length=200)
    slug = _slug_field()
    email = forms.EmailField(label="Admin email")
    password = forms.CharField(label="Password", widget=forms.PasswordInput(render_value=False), strip=False)
    plan = forms.ChoiceField(choices=Tenant.Plan.choices, initial=Tenant.Plan.FREE)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("Please enter your organisation's name.")
        return name

    def clean(self):
        cleaned = super().clean() or {}
        password = cleaned.get("password")
        if password:
            try:
                password_validation.validate_password(password)
            except ValidationError as exc:
                self.add_error("password", exc.messages[0])
        return cleaned


class OperatorProvisionForm(_SlugMixin, forms.Form):
    slug = _slug_field()
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the slug in title case.")
    isolation = forms.ChoiceField(choices=Tenant.Isolation.choices, initial=Tenant.Isolation.SHARED)
    plan = forms.ChoiceField(choices=Tenant.Plan.choices, initial=Tenant.Plan.FREE)
    owner_email = forms.EmailField(required=False, label="Owner email")
    # Fresh per form render: a double submit of one form starts one saga.
    request_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)


class ServerForm(forms.Form):
    """Registering a database server (tenants.servers.server_register connects before anything is saved)."""

    name = forms.CharField(max_length=40, help_text="Lowercase letters, digits, '-' or '_'.")
    host = forms.CharField(max_length=255)
    port = forms.IntegerField(min_value=1, max_value=65535, initial=5432)
    admin_user = forms.CharField(max_length=63, initial="postgres", help_text="May create roles and databases.")
    admin_password = forms.CharField(
        max_length=200, required=False, strip=False, widget=forms.PasswordInput(render_value=False)
    )
    capacity = forms.IntegerField(
        min_value=1, max_value=CAPACITY_MAX, initial=1000, help_text="Placements (pools, schemas, databases)."
    )
    takes_shared = forms.BooleanField(required=False, initial=True, label="Takes shared pools")
    takes_schema = forms.BooleanField(required=False, initial=True, label="Takes own schemas")
    takes_dedicated = forms.BooleanField(required=False, initial=True, label="Takes dedicated databases")


class ServerChangeForm(forms.Form):
    """A registered server's capacity and levels (tenants.servers.server_change)."""

    capacity = forms.IntegerField(min_value=1, max_value=CAPACITY_MAX, help_text="Placements it may hold.")
    takes_shared = forms.BooleanField(required=False, label="Shared pools")
    takes_schema = forms.BooleanField(required=False, label="Own schemas")
    takes_dedicated = forms.BooleanField(required=False, label="Dedicated databases")


class RenameForm(forms.Form):
    """The tenant page's Rename form; tenants.rename.tenant_rename checks the rest (taken names, state)."""

    slug = forms.CharField(label="New slug", max_length=40, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    domain = forms.CharField(
        label="Primary domain", max_length=253, required=False,
        help_text="Empty: <new slug>.<base domain>. Or another address under the base domain, or a verified custom domain.",
    )  # fmt: skip

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"].strip().lower()
        validate_slug(slug)
        return slug
