"""JSON API root. Apps add their routers here; authentication is per-operator tokens."""

from __future__ import annotations

from ninja import NinjaAPI

api = NinjaAPI(title="Tenant control plane API", version="1", openapi_url="/openapi.json", docs_url="/docs")


@api.get("/ping", auth=None, tags=["meta"])
def ping(request):
    return {"ok": True}
