from django.urls import path

from core import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("theme/", views.theme_set, name="theme_set"),
]
