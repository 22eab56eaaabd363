"""gunicorn's logger with secrets redacted from the access log.

The Procfile's ``web`` line runs gunicorn with
``--logger-class config.gunicorn.RedactingLogger``. Every GET of a sign-in link
(``/accounts/magic/<secret>/``) would otherwise write a live secret to the
access log, in the request line and in the ``Referer`` of the page after it.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from core.logging import redact


class RedactingLogger(Logger):
    """Every text atom of an access-log line (request line, path, query string,
    referer, request and response headers, environ) goes through
    :func:`core.logging.redact`, whatever ``--access-logformat`` uses."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            key: redact(value) if isinstance(value, str) else value
            for key, value in atoms.items()
        }
