"""Email through the job queue: a request renders the message and defers it; a
worker hands it to SMTP, retrying with backoff. A mail outage never slows or
breaks a page, and a crash between the request and the send loses nothing (the
job commits with the request's rows).

Messages are sealed (Fernet, key derived from ``SECRET_KEY``) before they are
stored as job arguments: a sign-in link is a credential, and the jobs table is
readable by staff in the admin and sits in every backup.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import smtplib
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.mail import EmailMessage
from procrastinate import RetryDecision
from procrastinate.retry import BaseRetryStrategy

logger = logging.getLogger(__name__)

MAIL_QUEUE = "mail"


class MailSealError(ValueError):
    """A sealed message that cannot be opened (tampered, or SECRET_KEY rotated)."""


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"core.mail:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


@dataclass(frozen=True)
class Mail:
    subject: str
    body: str
    to: list[str]
    from_email: str

    def seal(self) -> str:
        raw = json.dumps(
            {
                "subject": self.subject,
                "body": self.body,
                "to": self.to,
                "from": self.from_email,
            }
        )
        return _fernet().encrypt(raw.encode()).decode()

    @classmethod
    def unseal(cls, sealed: str) -> Mail:
        try:
            data = json.loads(_fernet().decrypt(sealed.encode()))
            return cls(
                subject=data["subject"],
                body=data["body"],
                to=list(data["to"]),
                from_email=data["from"],
            )
        except (InvalidToken, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MailSealError("The queued message cannot be opened.") from exc


def mail_deliver(*, sealed: str) -> None:
    """Hand one sealed message to the configured backend (SMTP in production).
    Raises on a transport failure, which the job's retry strategy retries."""
    mail = Mail.unseal(sealed)
    EmailMessage(mail.subject, mail.body, mail.from_email, mail.to).send()


# Transport failures worth another try; anything else (bad arguments, a message
# that cannot be unsealed) fails the job at once.
RETRYABLE = (smtplib.SMTPException, OSError)


class MailRetry(BaseRetryStrategy):
    """Retry transport failures with doubling waits (``MAIL_RETRY_SECONDS``,
    capped at an hour) up to ``MAIL_MAX_ATTEMPTS`` attempts in all; the last
    failure is logged as an error, and the job stays *failed* in the admin,
    where staff can retry it. Settings are read per failure, not at import."""

    def get_retry_decision(self, *, exception, job) -> RetryDecision | None:
        attempt = job.attempts + 1  # attempts counts the earlier ones
        if not isinstance(exception, RETRYABLE):
            return None
        if attempt >= settings.MAIL_MAX_ATTEMPTS:
            logger.error(
                "Mail job %s (%s) failed for good after %d attempts: %s",
                job.id,
                job.task_name,
                attempt,
                exception,
            )
            return None
        wait = min(settings.MAIL_RETRY_SECONDS * 2 ** (attempt - 1), 3600)
        logger.warning(
            "Mail job %s failed (attempt %d of %d), retrying in %d s: %s",
            job.id,
            attempt,
            settings.MAIL_MAX_ATTEMPTS,
            wait,
            exception,
        )
        return RetryDecision(retry_in={"seconds": wait})


def mail_enqueue(*, subject: str, body: str, to: list[str], from_email: str) -> None:
    """Defer one message on the mail queue, in the caller's transaction."""
    from core.tasks import mail_send

    sealed = Mail(subject=subject, body=body, to=to, from_email=from_email).seal()
    mail_send.defer(sealed=sealed)
