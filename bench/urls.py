"""The site's URLs plus ``/bench/floor/``: the floor every page is compared with.

The floor is a view that returns a fixed 2-byte body: it goes through the same
gunicorn workers and the whole middleware stack (health check, security,
whitenoise, sessions, CSRF, auth, messages, allauth) but touches no database
and renders no template. Served only under bench/settings.py.
"""

from django.http import HttpResponse
from django.urls import path

from config.urls import urlpatterns as site_urlpatterns


def floor(request):
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/floor/", floor), *site_urlpatterns]
