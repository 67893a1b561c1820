from __future__ import annotations

from django import forms
from django.contrib.auth.password_validation import validate_password


class LoginForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    password = forms.CharField(max_length=4096, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class ForgotPasswordForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )


class SetPasswordForm(forms.Form):
    password = forms.CharField(max_length=4096, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    confirm = forms.CharField(
        label="Repeat password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("password") and data.get("password") != data.get("confirm"):
            raise forms.ValidationError("The two passwords differ.")
        if data.get("password"):
            validate_password(data["password"])
        return data


class MemberForm(forms.Form):
    name = forms.CharField(max_length=200)
    email = forms.EmailField(max_length=254)
    is_admin = forms.BooleanField(required=False, label="Workspace admin")


class AccountForm(forms.Form):
    name = forms.CharField(max_length=200)
    currency = forms.CharField(max_length=3, initial="EUR")
