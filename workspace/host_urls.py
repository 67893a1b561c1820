"""Root URLconf of tenant hosts, so `workspace:` names reverse there (set by tenants.middleware)."""

from django.urls import include, path

urlpatterns = [path("", include("workspace.urls"))]
