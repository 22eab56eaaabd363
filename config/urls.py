from django.contrib import admin
from django.urls import include, path, register_converter

from api.v1 import api as api_v1
from config import views
from core.ids import IdConverter

register_converter(IdConverter, "id")

urlpatterns = [
    path("", views.home, name="home"),
    # Before admin/ and allauth: the passwordless sign-in page, magic links, the
    # admin's login (sent to the same sign-in page) and the account pages that
    # replace allauth's (connections, sessions).
    path("", include("accounts.auth_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api_v1.urls),
    # django-hijack's acquire/release (POST only): ADMIN support impersonation.
    path("impersonate/", include("hijack.urls")),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("apps_catalog.urls")),
    path("", include("searches.urls")),
    path("", include("billing.urls")),
    path("", include("api.urls")),
    path("", include("core.urls")),
]

# 404 and 500 pages: Django's own handlers render templates/404.html (with the
# request context) and templates/500.html (without context: the database may be
# what failed).
