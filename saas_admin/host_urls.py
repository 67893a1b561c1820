"""Root URLconf of tenant hosts (`<slug>.BASE_DOMAIN`, verified custom domains), set by tenants.middleware.

The workspace's pages, plus the signup hand-over that signs a new owner in on their host
(it belongs to tenants' self-signup, which the workspace does not import).
"""

from django.urls import include, path

from tenants import signup_views

urlpatterns = [
    path("welcome/<str:token>/", signup_views.welcome, name="signup_welcome"),
    path("", include("workspace.urls")),
]
