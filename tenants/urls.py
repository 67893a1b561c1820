from django.urls import path

from tenants import server_views, views
from tenants.exports import views as export_views

app_name = "tenants"
urlpatterns = [
    path("", views.tenant_list, name="list"),
    path("new/", views.tenant_provision, name="provision"),
    path("servers/", server_views.server_list, name="servers"),
    path("servers/add/", server_views.server_add, name="server_add"),
    path("servers/<int:server_id>/state/", server_views.server_state, name="server_state"),
    path("servers/<int:server_id>/change/", server_views.server_change, name="server_change"),
    path("<uuid:tenant_id>/", views.tenant_detail, name="detail"),
    path("<uuid:tenant_id>/suspend/", views.tenant_suspend, name="suspend"),
    path("<uuid:tenant_id>/resume/", views.tenant_resume, name="resume"),
    path("<uuid:tenant_id>/move/", views.tenant_move, name="move"),
    path("<uuid:tenant_id>/moves/", views.tenant_moves, name="moves"),
    path("<uuid:tenant_id>/plan/", views.tenant_plan, name="plan"),
    path("<uuid:tenant_id>/rename/", views.tenant_rename_view, name="rename"),
    path("<uuid:tenant_id>/delete/", views.tenant_delete, name="delete"),
    path("<uuid:tenant_id>/restore/", views.tenant_restore, name="restore"),
    path("<uuid:tenant_id>/exports/", export_views.tenant_exports, name="exports"),
    path("<uuid:tenant_id>/exports/new/", export_views.tenant_export_create, name="export_create"),
    path(
        "<uuid:tenant_id>/exports/<uuid:export_id>/download/",
        export_views.tenant_export_download,
        name="export_download",
    ),
    path(
        "<uuid:tenant_id>/exports/<uuid:export_id>/restore/", export_views.tenant_export_restore, name="export_restore"
    ),
    path("exports/owner/<str:token>/", export_views.owner_download, name="export_owner_download"),
    path("<uuid:tenant_id>/domains/", views.domain_add, name="domain_add"),
    path("<uuid:tenant_id>/domains/<int:domain_id>/verify/", views.domain_verify, name="domain_verify"),
    path("<uuid:tenant_id>/domains/<int:domain_id>/remove/", views.domain_remove, name="domain_remove"),
]
