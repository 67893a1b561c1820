"""JSON API endpoints of the tenants app, mounted under /api/ by saas_admin/api.py."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["tenants"])
