from core.models import AuditLog
from core.services import audit_log_record


def audit_social_account_added(sender, request, sociallogin, **kwargs):
    user = sociallogin.user
    audit_log_record(
        action=AuditLog.Action.ACCOUNT_CONNECTED,
        actor=user,
        target=user,
        changes={"provider": sociallogin.account.provider},
        request=request,
    )
