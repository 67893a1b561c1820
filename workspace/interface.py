"""The narrow interface the control plane uses to reach a tenant's data plane.

Provisioning, the tenant screens and the signup hand-over never import workspace models; they
call these functions inside the tenant's context (tenants.context.tenant_context), where the
router sends the queries to the tenant's placement and RLS limits them to the tenant:

    with tenant_context(tenant):
        workspace.owner_member_ensure(email=tenant.owner_email)
"""

from __future__ import annotations

from django.utils import timezone

from core.http import TenantRequest
from core.tenancy import current_alias
from workspace.auth import member_login
from workspace.models import Account, Member
from workspace.services import member_set_password_token


def _alias() -> str:
    alias = current_alias()
    if alias is None:
        raise RuntimeError("The workspace interface needs an open tenant_context.")
    return alias


def owner_member_ensure(*, email: str) -> None:
    """The tenant's first admin, with no usable password until they follow the set-password link (idempotent)."""
    members = Member.objects.using(_alias())
    if not members.filter(email=email).exists():
        member = Member(name=email.split("@")[0], email=email, is_admin=True, invited_at=timezone.now())
        member.set_password(None)
        member.save(using=_alias())


def owner_member_remove(*, email: str) -> None:
    Member.objects.using(_alias()).filter(email=email).delete()


def member_set_password_hash(*, email: str, password_hash: str) -> None:
    """Signup: the owner's password was chosen (and hashed) before the tenant existed."""
    Member.objects.using(_alias()).filter(email=email).update(password=password_hash)


def data_counts() -> dict[str, int]:
    """What the operator's tenant page shows about the data plane."""
    alias = _alias()
    return {"members": Member.objects.using(alias).count(), "accounts": Account.objects.using(alias).count()}


def set_password_token(*, email: str) -> str:
    """A one-time token for the member's set-password page (workspace.views.set_password)."""
    return member_set_password_token(Member.objects.using(_alias()).get(email=email))


def owner_invitation(*, email: str) -> tuple[str, str] | None:
    """(the owner's name, a set-password token) while the owner has no password yet, else None:
    provisioning emails the link to an operator-provisioned tenant's owner (signup owners chose one)."""
    member = Member.objects.using(_alias()).filter(email=email, is_active=True).first()
    if member is None or not member.invitation_pending:
        return None
    return member.name, member_set_password_token(member)


def member_sign_in(request: TenantRequest, *, email: str) -> bool:
    """Sign the active member with this email in on the tenant's host (the signup hand-over)."""
    member = Member.objects.using(_alias()).filter(email=email, is_active=True).first()
    if member is None:
        return False
    member_login(request, member)
    return True
