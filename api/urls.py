from django.urls import path

from api import views

urlpatterns = [
    path("account/api-keys/", views.api_keys, name="api_keys"),
    path(
        "account/api-keys/<id:key_id>/revoke/",
        views.api_key_revoke,
        name="api_key_revoke",
    ),
]
