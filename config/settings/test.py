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
