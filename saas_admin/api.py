"""JSON API root. Each app owns a Router in its api.py; authentication is per-operator tokens."""

from __future__ import annotations

from ninja import NinjaAPI

from compliance.api import router as compliance_router
from events.api import router as events_router
from tenants.api import router as tenants_router

api = NinjaAPI(title="Tenant control plane API", version="1", openapi_url="/openapi.json", docs_url="/docs")
api.add_router("/tenants", tenants_router)
api.add_router("/events", events_router)
api.add_router("/compliance", compliance_router)


@api.get("/ping", auth=None, tags=["meta"])
def ping(request):
    return {"ok": True}
