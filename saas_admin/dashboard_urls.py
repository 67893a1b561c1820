from django.conf import settings
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
    path("operators/<int:user_id>/unlock/", views.operator_unlock, name="operator_unlock"),
    path("operators/<int:user_id>/reset-mfa/", views.operator_reset_mfa, name="operator_reset_mfa"),
    path("account/tokens/", views.token_list, name="tokens"),
    path("account/tokens/new/", views.token_create, name="token_create"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
]

# Development only: the mailbox of `make run` (saas_admin/devmail.py); the URL does not exist otherwise.
if settings.EMAIL_BACKEND == "saas_admin.devmail.MailboxBackend":
    urlpatterns += [
        path("outbox/", views.outbox, name="outbox"),
        path("outbox/<str:mail_id>/", views.outbox_mail, name="outbox_mail"),
    ]
