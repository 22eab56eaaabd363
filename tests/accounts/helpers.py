import re

from django.core import mail
from django.test import TestCase

from tests.jobs import jobs_run_queued

LINK_RE = re.compile(r"https?://[^\s]+/accounts/magic/[^\s]+")


def request_link(client, email, path="/accounts/login/", **extra):
    """POST the sign-in form, then run the mail jobs it queued as a worker
    would (tests run inside one transaction no worker process can see)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(path, {"email": email}, **extra)
    jobs_run_queued()
    return response


def last_link(to=None) -> str:
    """Path of the magic link in the newest email (optionally to ``to``)."""
    messages = [m for m in mail.outbox if to is None or to in m.to]
    assert messages, "no sign-in email was sent"
    url = LINK_RE.search(messages[-1].body).group(0)
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


_CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"')


def page_without_csrf(content: bytes) -> bytes:
    """``content`` with every CSRF token blanked: each render masks the token
    afresh, so two otherwise identical pages differ in it (the footer's theme
    form carries one on every page)."""
    return _CSRF_INPUT.sub(b'name="csrfmiddlewaretoken" value=""', content)
