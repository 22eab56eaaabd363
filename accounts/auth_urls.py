"""Routes placed before admin/ and allauth's own (config/urls.py): they take
over the sign-in page, the admin's login and two allauth account pages, and
close allauth's pages that have no place in a passwordless site."""

from allauth.account import views as allauth_views
from django.urls import path, re_path
from django.views.generic import RedirectView

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
    # allauth serves these because SOCIALACCOUNT_ONLY is off (allauth.mfa needs
    # that): password change/set/reset, local signup, password reauthentication,
    # email management and confirmation, login by code. None applies here, and
    # email management would let a session change the account's address.
    # Reauthentication by emailed code (accounts/reauthenticate/code/…) stays.
    re_path(
        r"^accounts/(?:password|signup|email|confirm-email|login/code)(?:/|$)",
        views.no_passwords,
    ),
    path("accounts/reauthenticate/", views.no_passwords),
    # allauth sends a signed-in visitor of /accounts/ to its email page (closed).
    path("accounts/", RedirectView.as_view(pattern_name="account")),
]
