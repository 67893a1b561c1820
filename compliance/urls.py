"""Compliance screens, mounted at /compliance/ (see compliance/views.py)."""

from django.urls import path

from compliance import register_views, views

app_name = "compliance"
urlpatterns = [
    path("", views.overview, name="list"),
    path("evaluate/", views.evaluate, name="evaluate"),
    path("frameworks/<slug:key>/", views.framework_report, name="framework"),
    path("frameworks/<slug:key>/export.<str:fmt>", views.export_report, name="export"),
    path("frameworks/<slug:key>/export-job/", views.export_job, name="export_job"),
    path("exports/<int:job_id>/", views.export_download, name="export_download"),
    path("controls/<slug:key>/", views.control_detail, name="control"),
    path("controls/<slug:key>/edit/", views.control_edit, name="control_edit"),
    path("controls/<slug:key>/attest/", views.control_attest, name="control_attest"),
    path("results/<int:result_id>/", views.result_detail, name="result"),
    path("soa/", views.soa, name="soa"),
    path("tenants/<uuid:tenant_id>/", views.tenant_page, name="tenant"),
    path("access-reviews/", register_views.review_list, name="reviews"),
    path("access-reviews/start/", register_views.review_start, name="review_start"),
    path("access-reviews/<int:review_id>/", register_views.review_detail, name="review"),
    path("access-reviews/<int:review_id>/decide/", register_views.review_decide, name="review_decide"),
    path("access-reviews/<int:review_id>/complete/", register_views.review_complete, name="review_complete"),
    path("sign-in-review/", register_views.signin_review, name="signin_review"),
    path("incidents/", register_views.incident_list, name="incidents"),
    path("incidents/new/", register_views.incident_create, name="incident_create"),
    path("incidents/<int:incident_id>/", register_views.incident_update, name="incident_update"),
]
