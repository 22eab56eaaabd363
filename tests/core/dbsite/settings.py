"""Settings of the probe site that tests/pg_servers.py runs under gunicorn.

The real settings (base.py: DATABASE_URL, DIRECT_URL, DATABASE_READ_URL, the
router and middleware) plus a few test-only URLs that report which server
answered a read; plain HTTP and unhashed static files so no collectstatic.
"""

from config.settings.base import *  # noqa: F403

DEBUG = False
SECRET_KEY = "dbsite-test-key-not-for-production-" + "x" * 30
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.core.dbsite.urls"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
