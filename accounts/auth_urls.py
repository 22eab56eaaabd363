"""Routes placed before admin/ and allauth's own (config/urls.py): they take
over the sign-in page, the admin's login and two allauth account pages."""

from allauth.account import views as allauth_views
from django.urls import path

from accounts import views

urlpatterns = [
    path("accounts/login/", views.login, name="account_login"),
    path("accounts/magic/<str:secret>/", views.magic_link, name="magic_link"),
    path("accounts/3rdparty/", views.connections, name="socialaccount_connections"),
    path("accounts/sessions/", views.sessions, name="usersessions_list"),
    path("admin/login/", views.admin_login, name="accounts_admin_login"),
    path("admin/logout/", allauth_views.logout, name="accounts_admin_logout"),
    # Nobody has a password: the admin's password-change pages do not exist.
    path("admin/password_change/", views.no_passwords),
    path("admin/password_change/done/", views.no_passwords),
]
