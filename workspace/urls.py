"""The workspace pages on tenant hosts; included by saas_admin.host_urls, the root URLconf of tenant hosts."""

from django.urls import path

from workspace import ledger_views, views

app_name = "workspace"
urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("forgot-password/", views.forgot_password, name="forgot_password"),
    path("set-password/<str:token>/", views.set_password, name="set_password"),
    path("members/", views.member_list, name="members"),
    path("members/new/", views.member_new, name="member_new"),
    path("members/<int:pk>/", views.member_detail, name="member_detail"),
    path("members/<int:pk>/resend/", views.member_resend, name="member_resend"),
    path("members/<int:pk>/revoke/", views.member_revoke, name="member_revoke"),
    path("members/<int:pk>/role/", views.member_role, name="member_role"),
    path("members/<int:pk>/unlock/", views.member_unlock, name="member_unlock"),
    path("members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("privacy/", views.privacy_requests, name="privacy"),
    path("accounts/", views.account_list, name="accounts"),
    path("accounts/new/", views.account_new, name="account_new"),
    path("accounts/<int:pk>/", views.account_detail, name="account_detail"),
    path("accounts/<int:pk>/ledger/", ledger_views.account_ledger, name="account_ledger"),
    path("accounts/<int:pk>/ledger/move/", ledger_views.account_move, name="account_move"),
]
