"""Off-site copies of backups in S3-compatible storage, and fetching them back.

``BACKUP_STORAGE_URL`` is ``s3://BUCKET/PREFIX`` with optional query parameters
``endpoint_url`` (MinIO, Ceph, R2, moto…) and ``region``. Credentials come from
boto3's usual sources (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` or
``AWS_PROFILE``, instance roles), never from the URL, so the URL can be logged.
boto3 is used directly: its managed transfers do multipart uploads of large
dumps, and listing/deleting for retention is three calls.

An object's key is ``PREFIX/<name relative to BACKUP_DIR>``, e.g.
``backups/launchpad-20261127T021500Z.dump.age`` or
``backups/pre-migrate/launchpad-….dump.age``; that relative name is the
*remote name* ``restore_db``/``verify_backup`` accept as ``s3:<name>`` (or as
a bare name not found locally, when storage is configured).

``artifact_publish``/``artifact_fetch`` are the two entry points for any
backup artifact (dumps, base backups): encrypt + upload, and download + decrypt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from django.conf import settings

from core.backup_crypto import (
    ENCRYPTED_SUFFIX,
    BackupError,
    decrypt_file,
    encrypt_file,
    encryption_enabled,
    file_sha256,
    is_encrypted,
)

logger = logging.getLogger(__name__)

REMOTE_SCHEME = "s3:"
MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class StorageConfig:
    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str | None

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self, name: str = "") -> str:
        return f"s3://{self.bucket}/{self.key(name)}"


def storage_config() -> StorageConfig | None:
    url = getattr(settings, "BACKUP_STORAGE_URL", "") or ""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.hostname:
        raise BackupError(
            "BACKUP_STORAGE_URL must look like s3://bucket/prefix"
            "?endpoint_url=…&region=… (credentials from AWS_* variables)."
        )
    if parts.username or parts.password:
        raise BackupError(
            "BACKUP_STORAGE_URL must not hold credentials: set AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY instead."
        )
    query = parse_qs(parts.query)
    return StorageConfig(
        bucket=parts.hostname,
        prefix=parts.path.strip("/"),
        endpoint_url=(query.get("endpoint_url") or [None])[0],
        region=(query.get("region") or query.get("region_name") or [None])[0],
    )


def storage_enabled() -> bool:
    return storage_config() is not None


def _client(config: StorageConfig):
    import boto3

    return boto3.client(
        "s3", endpoint_url=config.endpoint_url, region_name=config.region
    )


def _storage_error(action: str, where: str, exc: Exception) -> BackupError:
    # botocore's messages name the operation and error code, never credentials.
    return BackupError(f"Could not {action} {where}: {exc}")


def _relative_name(path: Path) -> str:
    """The path's name relative to BACKUP_DIR (its remote name)."""
    path = Path(path).resolve()
    with contextlib.suppress(ValueError):
        return path.relative_to(Path(settings.BACKUP_DIR).resolve()).as_posix()
    return path.name


def upload(path: Path, name: str | None = None) -> str:
    """Upload ``path`` under its remote name; return that name."""
    config = storage_config()
    if config is None:
        raise BackupError("BACKUP_STORAGE_URL is not set.")
    name = name or _relative_name(path)
    try:
        _client(config).upload_file(str(path), config.bucket, config.key(name))
    except Exception as exc:
        raise _storage_error("upload to", config.describe(name), exc) from None
    logger.info("Uploaded %s to %s", path.name, config.describe(name))
    return name


def download(name: str, destination: Path) -> Path:
    config = storage_config()
    if config is None:
        raise BackupError(f"BACKUP_STORAGE_URL is not set: cannot fetch {name}.")
    try:
        _client(config).download_file(config.bucket, config.key(name), str(destination))
    except Exception as exc:
        Path(destination).unlink(missing_ok=True)
        raise _storage_error("download", config.describe(name), exc) from None
    return Path(destination)


def remote_exists(name: str) -> bool:
    config = storage_config()
    if config is None:
        return False
    try:
        _client(config).head_object(Bucket=config.bucket, Key=config.key(name))
    except Exception:
        return False
    return True


def remote_list(folder: str = "") -> list[str]:
    """Remote names directly in ``folder`` (not in its subfolders)."""
    config = storage_config()
    if config is None:
        return []
    base = config.key(folder.strip("/"))
    base = base.rstrip("/") + "/" if base else ""
    names: list[str] = []
    try:
        paginator = _client(config).get_paginator("list_objects_v2")
        for page in paginator.paginate(
            Bucket=config.bucket, Prefix=base, Delimiter="/"
        ):
            for item in page.get("Contents", []):
                names.append(item["Key"][len(config.key("")) :].lstrip("/"))
    except Exception as exc:
        raise _storage_error("list", config.describe(folder), exc) from None
    return names


def remote_delete(names: list[str]) -> None:
    config = storage_config()
    if config is None or not names:
        return
    client = _client(config)
    try:
        for start in range(0, len(names), 1000):
            client.delete_objects(
                Bucket=config.bucket,
                Delete={
                    "Objects": [
                        {"Key": config.key(n)} for n in names[start : start + 1000]
                    ],
                    "Quiet": True,
                },
            )
    except Exception as exc:
        raise _storage_error("delete from", config.describe(), exc) from None


# --- artifacts ------------------------------------------------------------------


def artifact_publish(path: Path, *, remote_name: str | None = None) -> Path:
    """Encrypt (BACKUP_ENCRYPTION_KEY) and upload (BACKUP_STORAGE_URL) a file.

    The remote name is ``remote_name`` (``.age`` appended when encrypted) or
    the file's path relative to BACKUP_DIR.

    Returns the local final path: ``path`` itself, or ``path.age`` when it was
    encrypted (the plaintext is then deleted). A ``<file>.manifest.json`` next
    to the final file is uploaded too. No-op when neither setting is set.
    Raises :class:`BackupError` (the local file is kept) when a step fails.
    """
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path} is not a file.")
    if encryption_enabled() and not is_encrypted(path):
        path = encrypt_file(path)
    if storage_enabled():
        name = remote_name or _relative_name(path)
        if is_encrypted(path) and not is_encrypted(name):
            # The suffix is what tells artifact_fetch to decrypt.
            name += ENCRYPTED_SUFFIX
        upload(path, name)
        manifest = path.with_name(path.name + MANIFEST_SUFFIX)
        if manifest.is_file():
            upload(manifest, name + MANIFEST_SUFFIX)
    return path


def parse_source(name_or_path: str | Path) -> tuple[str, str | Path]:
    """``("remote", name)`` or ``("local", Path)`` for a restore/verify argument.

    ``s3:NAME`` is always remote; an existing local path is local; a name
    that is not a local file is remote when BACKUP_STORAGE_URL is set.
    """
    text = str(name_or_path)
    if text.startswith(REMOTE_SCHEME):
        return "remote", text[len(REMOTE_SCHEME) :].lstrip("/")
    path = Path(text)
    if path.exists() or not storage_enabled():
        return "local", path
    # A bare relative name not found locally (BACKUP_DIR is checked first).
    in_dir = Path(settings.BACKUP_DIR) / text
    if in_dir.exists():
        return "local", in_dir
    return "remote", text


@dataclass
class Fetched:
    """A backup ready to read: plaintext ``path`` and its ``manifest`` (if any)."""

    path: Path
    manifest: Path | None
    source: str
    encrypted: bool
    temporary: Path | None


def _scratch_dir() -> Path:
    # Under BACKUP_DIR (0700, on the disk sized for dumps), not /tmp.
    base = Path(settings.BACKUP_DIR)
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".fetch-", dir=base))


def _check_encrypted(path: Path, manifest: Path | None) -> None:
    """Refuse an encrypted file whose SHA-256 differs from its manifest's."""
    if manifest is None or not manifest.is_file():
        return
    try:
        expected = json.loads(manifest.read_text()).get("encrypted_sha256")
    except (ValueError, AttributeError):
        return  # The caller reports a broken manifest.
    if expected and file_sha256(path) != expected:
        raise BackupError(
            f"{path.name}: checksum differs from its manifest "
            f"({path.stat().st_size} bytes): the file is damaged or truncated; "
            "nothing was decrypted or restored."
        )


@contextlib.contextmanager
def fetched(
    name_or_path: str | Path, *, manifest: Path | None = None
) -> Iterator[Fetched]:
    """Yield a local plaintext copy of a backup; temporary files always go.

    A remote backup is downloaded with its manifest; an encrypted one is
    checked against its manifest's ``encrypted_sha256`` before it is decrypted.
    """
    kind, where = parse_source(name_or_path)
    scratch: Path | None = None
    try:
        if kind == "remote":
            scratch = _scratch_dir()
            name = str(where)
            local = download(name, scratch / Path(name).name)
            if manifest is None and remote_exists(name + MANIFEST_SUFFIX):
                manifest = download(
                    name + MANIFEST_SUFFIX, scratch / (local.name + MANIFEST_SUFFIX)
                )
            source = f"{REMOTE_SCHEME}{name}"
        else:
            local = Path(where)
            if not local.is_file():
                raise BackupError(f"{local} does not exist.")
            if manifest is None:
                candidate = local.with_name(local.name + MANIFEST_SUFFIX)
                manifest = candidate if candidate.is_file() else None
            source = str(local)
        encrypted = is_encrypted(local)
        if encrypted:
            _check_encrypted(local, manifest)
            scratch = scratch or _scratch_dir()
            plain = decrypt_file(
                local, scratch / local.name.removesuffix(ENCRYPTED_SUFFIX)
            )
        else:
            plain = local
        yield Fetched(plain, manifest, source, encrypted, scratch)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def artifact_fetch(name_or_path: str | Path) -> Path:
    """A local path or a remote name → a decrypted file in a new temp dir.

    The caller owns the returned file's directory and removes it with
    :func:`artifact_cleanup` (always, e.g. in ``finally``).
    """
    scratch = _scratch_dir()
    try:
        with fetched(name_or_path) as item:
            target = scratch / item.path.name
            if item.temporary is not None:
                shutil.move(item.path, target)
            else:
                try:
                    # The caller deletes the copy: a hard link costs nothing.
                    os.link(item.path, target)
                except OSError:
                    shutil.copyfile(item.path, target)
                    target.chmod(0o600)
            if item.manifest is not None:
                shutil.copyfile(
                    item.manifest, scratch / (target.name + MANIFEST_SUFFIX)
                )
        return target
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def artifact_cleanup(path: Path) -> None:
    """Remove a file from :func:`artifact_fetch` and its temp dir."""
    path = Path(path)
    if path.parent.name.startswith(".fetch-"):
        shutil.rmtree(path.parent, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
