from django.urls import path

from saas_admin import views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
]
