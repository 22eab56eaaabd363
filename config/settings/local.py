"""Developer machine: DEBUG on, a fixed key, localhost only."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str(
    "SECRET_KEY", default="django-insecure-local-development-key-not-for-production"
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# Passkeys on http://localhost during development (WebAuthn wants HTTPS otherwise).
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG
