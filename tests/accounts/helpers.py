import re

from django.core import mail
from django.test import TestCase

LINK_RE = re.compile(r"https?://[^\s]+/accounts/magic/[^\s]+")


def request_link(client, email, path="/accounts/login/", **extra):
    """POST the sign-in form; on-commit emails are sent as if the request's
    transaction had committed (tests run inside one)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(path, {"email": email}, **extra)


def last_link(to=None) -> str:
    """Path of the magic link in the newest email (optionally to ``to``)."""
    messages = [m for m in mail.outbox if to is None or to in m.to]
    assert messages, "no sign-in email was sent"
    url = LINK_RE.search(messages[-1].body).group(0)
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])
