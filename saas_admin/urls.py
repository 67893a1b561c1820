from django.urls import include, path

from saas_admin import views
from saas_admin.api import api

urlpatterns = [
    path("", include("saas_admin.dashboard_urls")),
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.SignOutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("api/", api.urls),
    path("tenants/", include("tenants.urls")),
    path("events/", include("events.urls")),
    path("compliance/", include("compliance.urls")),
    path("sagas/", include("sagas.urls")),
    path("jobs/", include("jobs.urls")),
    path("migrations/", include("migration_runs.urls")),
    path("audit/", include("audit.urls")),
    path("signup/", include("tenants.signup_urls")),
]
