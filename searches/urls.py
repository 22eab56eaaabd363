from django.urls import path

from searches import views

urlpatterns = [
    path("search/", views.search, name="search"),
]
