from django.utils import timezone

from api.keys import key_hash, key_looks_valid
from api.models import ApiKey


def api_key_for_token(token: str) -> ApiKey | None:
    """The usable key ``token`` is, with its active user, or None (unknown,
    revoked, expired, or its user deactivated)."""
    if not token or not key_looks_valid(token):
        return None
    api_key = (
        ApiKey.objects.select_related("user").filter(key_hash=key_hash(token)).first()
    )
    if api_key is None or not api_key.is_usable(timezone.now()):
        return None
    if not api_key.user.is_active:
        return None
    return api_key


def api_keys_of(*, user):
    return ApiKey.objects.filter(user=user).order_by("-created_at")
