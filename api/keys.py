"""Making, hashing and finding API keys.

``lp_live_`` + 32 characters from the OS's CSPRNG (base62: ~190 bits). The
key is never stored: its SHA-256 is, and looked up through a unique index.
"""

import hashlib
import secrets
import string

KEY_PREFIX = "lp_live_"
_ALPHABET = string.ascii_letters + string.digits
_RANDOM_LENGTH = 32
# Characters of the random part kept in clear with the key (its "prefix").
_VISIBLE = 4


def key_generate() -> str:
    return KEY_PREFIX + "".join(
        secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH)
    )


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def key_prefix(raw: str) -> str:
    return raw[: len(KEY_PREFIX) + _VISIBLE]


def key_looks_valid(raw: str) -> bool:
    """Shape check before any database work: a bearer token that cannot be a
    key (wrong prefix or length, other characters) is refused without a query."""
    body = raw[len(KEY_PREFIX) :]
    return (
        raw.startswith(KEY_PREFIX)
        and len(body) == _RANDOM_LENGTH
        and all(c in _ALPHABET for c in body)
    )
