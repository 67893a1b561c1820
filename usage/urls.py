from django.urls import path

from usage import views

app_name = "usage"
urlpatterns = [
    path("", views.usage_list, name="list"),
    path("collect/", views.collect_now, name="collect"),
    path("tenants/<uuid:tenant_id>/", views.tenant_usage, name="tenant"),
    path("tenants/<uuid:tenant_id>/usage.csv", views.tenant_usage_csv, name="tenant_csv"),
    path("records/", views.record_list, name="records"),
    path("records/export.<str:fmt>", views.record_export, name="records_export"),
]
