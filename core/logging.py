"""Keep live secrets out of log lines.

A sign-in link carries its secret in the path (``/accounts/magic/<secret>/``)
and ``/healthz`` accepts its token as ``?token=``. Both reach logs in full: the
web server's access log, Django's request log ("Not Found: <path>", "Gone:
<path>") and the development server's request lines. Whoever reads a log must
not be able to sign in as the people in it, so every such line is redacted
before it is written: by :class:`RedactSecretsFilter` on the handlers in
``LOGGING`` and by ``config.gunicorn.RedactingLogger`` for gunicorn's access log.

Pure Python (no Django import): gunicorn's logger class loads this module
before Django is set up.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# (pattern, replacement): the path segment after /accounts/magic/ (raw or
# percent-encoded slashes end it), and the value of a ``token`` query parameter.
SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(/accounts/magic/)[^/?#\s\"']+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"([?&;]token=)[^&#\s\"']*", re.IGNORECASE), rf"\g<1>{REDACTED}"),
)


def redact(text: str) -> str:
    """``text`` with every secret the patterns know replaced by ``[redacted]``."""
    if "/accounts/magic/" not in text and "token=" not in text.lower():
        return text  # the common case costs one scan, no regex
    for pattern, replacement in SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Rewrite a record's message (and traceback text) with secrets redacted.

    The message is formatted here (``msg % args``) and the record keeps the
    result with no args, so every handler after this one, and any formatter,
    sees the redacted text only. Put it on handlers, not loggers: a logger's
    filters do not see records propagated from its children (``django.request``
    reaches the root's handlers by propagation).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # a record that cannot be formatted is logged as it is
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
