from django.contrib import admin
from django.urls import include, path

from config import views

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("apps_catalog.urls")),
    path("", include("searches.urls")),
    path("", include("billing.urls")),
    path("", include("ops.urls")),
]

handler404 = "config.views.page_not_found"
handler500 = "config.views.server_error"
