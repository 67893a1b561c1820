from django.urls import path

from sagas import views

app_name = "sagas"
urlpatterns = [
    path("", views.saga_list, name="list"),
    path("<str:saga_id>/", views.saga_detail, name="detail"),
    path("<str:saga_id>/<str:action>/", views.saga_action, name="action"),
]
