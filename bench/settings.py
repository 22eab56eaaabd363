"""Production settings plus the bench-only floor URL (bench/urls.py).

Used only by `make bench` (bench/run.py sets DJANGO_SETTINGS_MODULE to it for the
driver and for gunicorn); nothing else imports it.
"""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
