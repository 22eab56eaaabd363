from django.urls import path

from accounts import views

urlpatterns = [
    path("account/", views.account, name="account"),
    path("account/profile/", views.profile_update, name="account_profile"),
    path("account/name/", views.account_name, name="account_name"),
    path("account/data/", views.data_export_request, name="data_export_request"),
    path(
        "account/data/<str:export_id>/",
        views.data_export_download,
        name="data_export_download",
    ),
    path("account/delete/", views.account_delete, name="account_delete"),
]
