from django.urls import path

from apps_catalog import views

urlpatterns = [
    path("explore/", views.explore, name="explore"),
    path("apps/", views.my_apps, name="my_apps"),
]
