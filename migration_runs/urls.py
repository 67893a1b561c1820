"""Cross-tenant migrations, mounted at /migrations/ (see migration_runs/views.py)."""

from django.urls import path

from migration_runs import views

app_name = "migration_runs"
urlpatterns = [
    path("", views.migration_status, name="list"),
    path("verify/", views.verify, name="verify"),
    path("runs/", views.run_start, name="run_start"),
    path("runs/<uuid:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<uuid:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path("runs/<uuid:run_id>/approve/", views.run_approve, name="run_approve"),
    path("runs/<uuid:run_id>/reject/", views.run_reject, name="run_reject"),
    path("runs/<uuid:run_id>/resume/", views.run_resume, name="run_resume"),
]
