"""Test run: real PostgreSQL (embedded unless DATABASE_URL), fast and quiet."""

from .base import *  # noqa: F403
from .base import DATABASES, env

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Several checkouts (or helpers) may share one server: each can name its own test DB.
DATABASES["default"]["TEST"] = {
    "NAME": env.str("DJANGO_TEST_DB_NAME", default="test_saas"),
    **DATABASES["default"].get("TEST", {}),
}
# Test connections are closed between tests; no point keeping them longer.
DATABASES["default"]["CONN_MAX_AGE"] = 0

# A real worker started by tests/core/test_jobs_worker.py runs with these
# settings and JOBS_TEST_WORKER_DB naming the pytest database it must use (a
# test database is not this process's default). It also loads the test-only
# tasks and sends mail through EMAIL_URL (an SMTP server of the test), not
# locmem. Never set outside those tests.
if env.str("JOBS_TEST_WORKER_DB", default=""):
    DATABASES["default"]["NAME"] = env.str("JOBS_TEST_WORKER_DB")
    PROCRASTINATE_IMPORT_PATHS = ["tests.core.worker_tasks"]
    EMAIL_BACKEND = env.email_url("EMAIL_URL", default="consolemail://")[
        "EMAIL_BACKEND"
    ]

# Browser tests register passkeys on http://localhost (no TLS in tests).
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = True
