"""Request bodies: JSON only, and only JSON PostgreSQL can store.

Refused with a reason (problems._http_error reads ``request.api_body_error``,
because ninja wraps whatever a parser raises into a bare "Cannot parse request
body"): malformed JSON, nesting deeper than MAX_DEPTH (``json`` recurses, so a
10,000-deep array is a RecursionError), NUL characters and lone surrogates
(``"\\ud800"``: Python keeps them, PostgreSQL and UTF-8 encoders refuse them).
"""

import json

from ninja.parser import Parser

MAX_DEPTH = 32


class BodyRejected(ValueError):
    pass


def _check(value, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise BodyRejected(f"The JSON is nested more than {MAX_DEPTH} levels deep.")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check(item, depth + 1)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise BodyRejected("Text in the body contains a NUL character.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BodyRejected(
            "Text in the body is not valid Unicode (a lone surrogate such as \\ud800)."
        ) from None


class ApiParser(Parser):
    def parse_body(self, request):
        try:
            data = json.loads(request.body)
        except RecursionError:
            request.api_body_error = (
                f"The JSON is nested more than {MAX_DEPTH} levels deep."
            )
            raise
        except ValueError:
            request.api_body_error = "The request body must be valid JSON."
            raise
        try:
            _check(data)
        except BodyRejected as exc:
            request.api_body_error = str(exc)
            raise
        return data
