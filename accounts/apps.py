from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and sign-in"

    def ready(self):
        from allauth.socialaccount.signals import social_account_added

        from accounts.signals import audit_social_account_added

        # allauth's connect flow has no adapter hook after a successful link;
        # its signal is the one place that sees it (an audit write, no logic).
        social_account_added.connect(
            audit_social_account_added, dispatch_uid="accounts_audit_social_added"
        )
