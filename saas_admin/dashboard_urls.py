from django.urls import path

from saas_admin import views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
    path("operators/", views.operator_list, name="operators"),
    path("operators/new/", views.operator_create, name="operator_create"),
    path("operators/<int:user_id>/role/", views.operator_change_role, name="operator_role"),
    path("operators/<int:user_id>/deactivate/", views.operator_deactivate, name="operator_deactivate"),
    path("operators/<int:user_id>/activate/", views.operator_activate, name="operator_activate"),
    path("operators/<int:user_id>/reset-password/", views.operator_reset_password, name="operator_reset_password"),
    path("account/tokens/", views.token_list, name="tokens"),
    path("account/tokens/new/", views.token_create, name="token_create"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
]
