from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and sign-in"

    def ready(self):
        from allauth.mfa import signals as mfa_signals
        from allauth.socialaccount.signals import social_account_added
        from django.contrib.auth.signals import user_logged_out
        from hijack import signals as hijack_signals

        from accounts import impersonation, signals

        # allauth's connect and two-factor flows have no adapter hook after a
        # successful change; their signals are the one place that sees it (audit
        # writes and a cache flush, no logic).
        social_account_added.connect(
            signals.audit_social_account_added,
            dispatch_uid="accounts_audit_social_added",
        )
        for signal, receiver in (
            (mfa_signals.authenticator_added, signals.audit_authenticator_added),
            (mfa_signals.authenticator_removed, signals.audit_authenticator_removed),
            (mfa_signals.authenticator_reset, signals.audit_authenticator_reset),
            (mfa_signals.authenticator_used, signals.audit_authenticator_used),
        ):
            signal.connect(receiver, dispatch_uid=f"accounts_{receiver.__name__}")
        # Impersonation's start and end (Stop, or signing out) are audit rows.
        for signal, receiver in (
            (hijack_signals.hijack_started, impersonation.audit_impersonation_started),
            (hijack_signals.hijack_ended, impersonation.audit_impersonation_ended),
            (user_logged_out, impersonation.audit_impersonation_signed_out),
        ):
            signal.connect(receiver, dispatch_uid=f"accounts_{receiver.__name__}")
