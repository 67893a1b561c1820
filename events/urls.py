from django.urls import path

from events import views

app_name = "events"
urlpatterns = [
    path("", views.event_list, name="list"),
    path("tail/", views.event_tail, name="tail"),
    path("verify/", views.chain_verify, name="verify"),
    path("projections/", views.projection_list, name="projections"),
    path("projections/rebuild/", views.projection_rebuild, name="projection_rebuild"),
    path("<int:event_id>/", views.event_detail, name="detail"),
    path("by-uuid/<uuid:event_uuid>/", views.event_by_uuid, name="by_uuid"),
    path("aggregate/<str:aggregate_type>/<path:aggregate_id>/", views.aggregate_detail, name="aggregate"),
]
