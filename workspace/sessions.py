"""Session engine of tenant hosts: Django's database sessions, stored in workspace.MemberSession.

tenants.middleware.HostSessionMiddleware picks it for requests on a tenant's host, where the
router sends the model to the tenant's data-plane alias and RLS limits it to the tenant. Each row
also carries the signed-in member's id, so `member_sessions_end` ends all of one member's sessions.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DBStore

SESSION_KEY = "workspace_member"  # what workspace.auth stores: {"tenant": uuid, "member": id}


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls):
        # At call time: the model module imports this one for get_session_store_class.
        from workspace.models import MemberSession

        return MemberSession

    def create_model_instance(self, data: dict[str, Any]) -> Any:
        instance: Any = super().create_model_instance(data)
        member = (data.get(SESSION_KEY) or {}).get("member")
        instance.member_id = member if isinstance(member, int) else None
        return instance
