"""Data-subject rights, mounted at /privacy/ (see privacy/views.py)."""

from django.urls import path

from privacy import views

app_name = "privacy"
urlpatterns = [
    path("", views.request_list, name="list"),
    path("requests/", views.request_open, name="open"),
    path("requests/<str:request_id>/", views.request_detail, name="detail"),
    path("requests/<str:request_id>/link/", views.link_create, name="link_create"),
    path("requests/<str:request_id>/approve/", views.erasure_decide, {"decision": "approve"}, name="approve"),
    path("requests/<str:request_id>/reject/", views.erasure_decide, {"decision": "reject"}, name="reject"),
    path("download/<str:token>/", views.download, name="download"),
    path("holds/", views.hold_list, name="holds"),
    path("holds/place/", views.hold_place, name="hold_place"),
    path("holds/<int:hold_id>/release/", views.hold_release, name="hold_release"),
    path("retention/", views.retention, name="retention"),
    path("retention/<str:category>/", views.retention_set, name="retention_set"),
    path("processing/", views.processing, name="processing"),
    path("processing.<str:fmt>", views.processing_export, name="processing_export"),
]
