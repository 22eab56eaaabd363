"""Collision-resistant string ids in the style of the seeds' CUIDs.

25 characters: a lowercase letter, then 24 base-36 characters drawn from the
operating system's CSPRNG (~124 bits). URL-safe, not guessable, and not
sequential, so ids leak neither row counts nor creation order.
"""

import secrets
import string

from django.db import models

ID_LENGTH = 25
_ALPHABET = string.ascii_lowercase + string.digits


_BODY_SPACE = 36 ** (ID_LENGTH - 1)


def new_id() -> str:
    value = secrets.randbelow(26 * _BODY_SPACE)
    first, body = divmod(value, _BODY_SPACE)
    chars = []
    for _ in range(ID_LENGTH - 1):
        body, digit = divmod(body, 36)
        chars.append(_ALPHABET[digit])
    return string.ascii_lowercase[first] + "".join(chars)


class IdConverter:
    """URL converter ``<id:pk>``: matches only the shape :func:`new_id` makes, so a
    malformed id (a NUL byte, a stray character) is a 404 at routing instead of
    reaching the database."""

    regex = f"[a-z][a-z0-9]{{{ID_LENGTH - 1}}}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class IdField(models.CharField):
    """Primary key holding a :func:`new_id` value.

    The column uses the "C" collation: ids are ASCII, byte order compares
    fastest, and a btree in C order also serves prefix (LIKE 'abc%') lookups.
    So the second ``varchar_pattern_ops`` index that Django adds to every
    varchar key (and every foreign key to one) is pure cost; Django skips it
    for types not spelled ``varchar``, hence :meth:`db_type`.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("db_collation", "C")
        kwargs.setdefault("max_length", ID_LENGTH)
        kwargs.setdefault("primary_key", True)
        kwargs.setdefault("default", new_id)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return f"character varying({self.max_length})"
        return super().db_type(connection)

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        for key in ("db_collation", "max_length", "primary_key", "default", "editable"):
            kwargs.pop(key, None)
        return name, "core.ids.IdField", args, kwargs
