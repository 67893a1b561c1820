"""Session engine of tenant hosts: Django's database sessions, stored in workspace.MemberSession.

tenants.middleware.HostSessionMiddleware picks it for requests on a tenant's host, where the
router sends the model to the tenant's data-plane alias and RLS limits it to the tenant.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DBStore


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls):
        # At call time: the model module imports this one for get_session_store_class.
        from workspace.models import MemberSession

        return MemberSession
