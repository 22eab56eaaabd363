from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        from accounts import hooks
        from billing.selectors import user_export_billing
        from billing.services import user_deletion_refuse_while_subscribed

        hooks.user_deletion_check_register(user_deletion_refuse_while_subscribed)
        # The user's part of "Download my data".
        hooks.user_data_export_register("billing", user_export_billing)
