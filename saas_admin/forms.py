from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.validators import UnicodeUsernameValidator

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import SystemActor
from core.http import client_ip
from core.permissions import Role
from saas_admin.models import TokenScope
from saas_admin.services import LOGIN_BLOCKED, login_failed, login_lockout_reason

ROLE_CHOICES = [(role.name.lower(), role.group_name) for role in sorted(Role, reverse=True)]
ROLE_HELP = {
    Role.VIEWER: "Read only: every page, nothing that changes anything.",
    Role.OPERATOR: "Day-to-day actions: provisioning, suspend/resume, saga retries.",
    Role.ADMIN: "Everything, plus migrations, tier moves, deletion, erasure and operators.",
}


def role_from_choice(value: str) -> Role:
    return Role[value.upper()]


class OperatorLoginForm(AuthenticationForm):
    """Django's sign-in form, refusing early while an account or address is locked out."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That username and password don't match an active operator account.",
        "inactive": "This account is deactivated; ask an admin.",
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        reason = login_lockout_reason(username=username, ip_address=client_ip(self.request))
        if reason:
            audit_record(
                actor=SystemActor(username or "anonymous"),
                action=LOGIN_BLOCKED,
                target_type="user_login",
                target_id=username.strip().lower()[:100],
                summary=f"Sign-in refused for “{username}” while locked out",
                request=self.request,
            )
            raise forms.ValidationError(reason, code="locked_out")
        return super().clean()

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not user.is_staff:
            # Tenant members have their own workspace sign-in; the dashboard is for operators.
            audit_record(
                actor=SystemActor(user.get_username()),
                action=AuditAction.AUTH_LOGIN_FAILED,
                target_type="user_login",
                target_id=user.get_username().strip().lower()[:100],
                summary=f"Failed sign-in for “{user.get_username()}” (not an operator)",
                request=self.request,
            )
            login_failed(username=user.get_username(), ip_address=client_ip(self.request))
            raise forms.ValidationError(self.error_messages["invalid_login"], code="invalid_login")


class OperatorCreateForm(forms.Form):
    username = forms.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(
        choices=ROLE_CHOICES,
        initial="viewer",
        help_text="Viewer: read only. Operator: day-to-day actions. Admin: also migrations, moves, deletion, erasure and operators.",
    )

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(f"An account named “{username}” already exists.")
        return username


class RoleChangeForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("never", "Never")]


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. “terraform” or “billing sync”.")
    scope = forms.ChoiceField(
        choices=TokenScope.choices,
        initial=TokenScope.READ,
        required=False,
        help_text="Read: every GET. Read and write: day-to-day actions. Admin: everything your role may do.",
    )
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90")

    def clean_scope(self) -> str:
        return self.cleaned_data.get("scope") or TokenScope.READ

    def expires_in_days(self) -> int | None:
        value = self.cleaned_data["expires"]
        return None if value == "never" else int(value)
