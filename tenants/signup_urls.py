from django.urls import path

from tenants import signup_views as views

app_name = "signup"
urlpatterns = [
    path("", views.signup, name="form"),
    path("check-slug/", views.slug_check, name="check_slug"),
    path("sent/", views.sent, name="sent"),
    path("verify/<str:token>/", views.verify, name="verify"),
    path("progress/<str:token>/", views.progress, name="progress"),
]
