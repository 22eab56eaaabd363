from django.urls import path

from billing import views

urlpatterns = [
    path("pricing/", views.pricing, name="pricing"),
    path("billing/", views.billing, name="billing"),
]
