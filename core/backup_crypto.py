"""Encryption at rest of backups with age (``pyrage``, age's Python binding).

``BACKUP_ENCRYPTION_KEY`` holds one or more age identities
(``AGE-SECRET-KEY-1…``, separated by commas or whitespace). Files are encrypted
to the first one's public key; decryption tries them all, so a key can be
rotated by putting the new one first and keeping the old one until the backups
made with it have aged out.

The key is a secret: no message, log line or exception raised here contains it
(pyrage's own errors are replaced, not chained).

This module is the bottom of the backup modules (core.backups and
core.backup_storage import it), so it also holds what both need.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from django.conf import settings

ENCRYPTED_SUFFIX = ".age"


class BackupError(Exception):
    """A backup, restore or verification that did not succeed (readable message)."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def encryption_enabled() -> bool:
    return bool(getattr(settings, "BACKUP_ENCRYPTION_KEY", ""))


def is_encrypted(path: Path | str) -> bool:
    return str(path).endswith(ENCRYPTED_SUFFIX)


def _identities() -> list:
    import pyrage

    raw = getattr(settings, "BACKUP_ENCRYPTION_KEY", "") or ""
    keys = [k for k in raw.replace(",", " ").split() if k]
    if not keys:
        raise BackupError("BACKUP_ENCRYPTION_KEY is not set: cannot decrypt.")
    identities = []
    for position, key in enumerate(keys, start=1):
        try:
            identities.append(pyrage.x25519.Identity.from_str(key))
        except Exception:
            # pyrage's message could quote the key: never chain it.
            raise BackupError(
                f"BACKUP_ENCRYPTION_KEY (key {position}) is not an age identity "
                "(expected AGE-SECRET-KEY-1…; make one with age-keygen or with "
                "pyrage.x25519.Identity.generate())."
            ) from None
    return identities


def encrypt_file(path: Path, *, keep_plaintext: bool = False) -> Path:
    """Encrypt ``path`` to ``path.age`` (atomically, fsynced, 0600); return it.

    The plaintext is deleted afterwards unless ``keep_plaintext``; on failure
    no ``.age`` file is left and the plaintext is kept (the caller decides).
    """
    import pyrage

    path = Path(path)
    recipient = _identities()[0].to_public()
    final = path.with_name(path.name + ENCRYPTED_SUFFIX)
    partial = path.with_name(f".{final.name}.{secrets.token_hex(4)}.partial")
    try:
        pyrage.encrypt_file(str(path), str(partial), [recipient])
        partial.chmod(0o600)
        fsync_file(partial)
        os.replace(partial, final)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(
            f"Could not encrypt {path.name}: {type(exc).__name__}"
        ) from None
    if not keep_plaintext:
        path.unlink(missing_ok=True)
    return final


def decrypt_file(path: Path, destination: Path) -> Path:
    """Decrypt ``path`` into ``destination`` (0600); nothing is left on failure."""
    import pyrage

    path, destination = Path(path), Path(destination)
    identities = _identities()
    try:
        # Created private first: it will hold plaintext.
        destination.touch(mode=0o600, exist_ok=False)
        pyrage.decrypt_file(str(path), str(destination), identities)
    except Exception as exc:
        destination.unlink(missing_ok=True)
        reason = (
            "wrong BACKUP_ENCRYPTION_KEY (no key matches the file)"
            if "no matching keys" in str(exc).lower()
            else "the file is damaged or not an age file"
        )
        raise BackupError(f"Cannot decrypt {path.name}: {reason}.") from None
    return destination
