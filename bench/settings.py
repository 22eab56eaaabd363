"""Production settings plus what the bench needs: the floor URL (bench/urls.py),
a no-op job (bench/tasks.py) and a per-IP sign-in limit that lets every
concurrent sign-in through.

Used only by `make bench` (bench/run.py sets DJANGO_SETTINGS_MODULE to it for the
driver, gunicorn and the job workers); nothing else imports it.
"""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
PROCRASTINATE_IMPORT_PATHS = ["bench.tasks"]
# The sign-in step sends 50 concurrent sign-ins, all from 127.0.0.1: production's
# 20 a minute per IP would refuse 30 of them. The per-address limit (3 a minute)
# and the counting itself (two cache counters per request) stay as they are.
ACCOUNT_RATE_LIMITS = {"magic_link_request": "3/m/key,1000/m/ip"}
