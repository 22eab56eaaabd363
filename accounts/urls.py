from django.urls import path

from accounts import views

urlpatterns = [
    path("account/", views.account, name="account"),
    path("account/profile/", views.profile_update, name="account_profile"),
    path("account/delete/", views.account_delete, name="account_delete"),
]
