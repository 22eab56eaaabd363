"""``Authorization: Bearer lp_live_…`` — the only way into /api/v1/.

A browser's session cookie is ignored here (the API never reads it), and a key
never opens a session: nothing here logs anyone in.
"""

from ninja.security import HttpBearer

from api.operations import unknown_query_parameters
from api.problems import RateLimited, ScopeMissing, UnknownQueryParameters
from api.ratelimit import rate_limit_hit
from api.selectors import api_key_for_token
from api.services import api_key_touch


class ApiKeyAuth(HttpBearer):
    def __call__(self, request):
        # ninja's own __call__ logs the whole header in DEBUG: a secret in a log.
        value = request.headers.get("Authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request, token):
        api_key = api_key_for_token(token)
        if api_key is None:
            return None
        request.api_key = api_key
        # Services and selectors take the key's owner as the acting user.
        request.user = api_key.user
        state = rate_limit_hit(api_key.pk)
        request.api_rate = state
        if state.exceeded:
            raise RateLimited(state)
        # After the key: a caller without one learns only that it needs one.
        unknown = unknown_query_parameters(request)
        if unknown:
            raise UnknownQueryParameters(unknown)
        api_key_touch(api_key=api_key)
        return api_key


def scope_require(request, scope: str) -> None:
    """Refuse (403) unless the request's key has ``scope``."""
    if scope not in request.auth.scopes:
        raise ScopeMissing(scope)
