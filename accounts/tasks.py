"""accounts' jobs: thin wrappers around services, with ids, safe to run twice."""

from __future__ import annotations

from procrastinate.contrib.django import app

from accounts import services
from core.mail import MAIL_QUEUE, MailRetry


@app.task(queue=MAIL_QUEUE, retry=MailRetry(), name="accounts.magic_link_mail_send")
def magic_link_mail_send(*, link_id: str | None, sealed: str | None) -> str:
    """Deliver a sign-in link deferred by ``services.magic_link_request``."""
    return services.magic_link_mail_deliver(link_id=link_id, sealed=sealed)
