from django.urls import include, path

from saas_admin import mfa_views, views
from saas_admin.api import api
from usage import views as usage_views

urlpatterns = [
    path("", include("saas_admin.dashboard_urls")),
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.SignOutView.as_view(), name="logout"),
    path("account/mfa/", mfa_views.mfa_devices, name="mfa_devices"),
    path("account/mfa/setup/", mfa_views.mfa_setup, name="mfa_setup"),
    path("account/mfa/verify/", mfa_views.mfa_verify, name="mfa_verify"),
    path("account/mfa/recovery-codes/", mfa_views.mfa_recovery_codes, name="mfa_recovery_codes"),
    path("account/mfa/<str:kind>/<int:device_id>/remove/", mfa_views.mfa_device_remove, name="mfa_device_remove"),
    path("account/mfa/webauthn/", include("django_otp_webauthn.urls", namespace="otp_webauthn")),
    path("healthz", views.healthz, name="healthz"),
    path("api/", api.urls),
    path("tenants/", include("tenants.urls")),
    path("events/", include("events.urls")),
    path("compliance/", include("compliance.urls")),
    path("privacy/", include("privacy.urls")),
    path("sagas/", include("sagas.urls")),
    path("jobs/", include("jobs.urls")),
    path("migrations/", include("migration_runs.urls")),
    path("audit/", include("audit.urls")),
    path("signup/", include("tenants.signup_urls")),
    path("usage/", include("usage.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("metrics", usage_views.metrics_view, name="metrics"),
]

# Under /api/ even a path no operation matches answers JSON, as the OpenAPI document says.
handler404 = "saas_admin.views.not_found"
handler400 = "saas_admin.views.bad_request_page"
