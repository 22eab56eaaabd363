from django.urls import path

from billing import views

urlpatterns = [
    path("pricing/", views.pricing, name="pricing"),
    path("billing/", views.billing, name="billing"),
    path("billing/upgrade/", views.upgrade, name="billing_upgrade"),
    path("billing/portal/", views.portal, name="billing_portal"),
    path("billing/success/", views.success, name="billing_success"),
    path("billing/cancel/", views.cancel, name="billing_cancel"),
    path("billing/webhook/", views.webhook, name="billing_webhook"),
]
