"""Where photo files live, behind one small interface; the database keeps only metadata.

    store = media_store()              # INTAKE_MEDIA_BACKEND: local (default) or s3
    store.put("2026/12/01/ab12….jpg", data, "image/jpeg")
    store.get(key); store.delete(key)

`LocalMediaStore` writes under var/media (INTAKE_MEDIA_DIR), files mode 600, each written to
a temporary name and renamed, so a half-written file never has a real name. `S3MediaStore`
talks to any S3-compatible object store (MinIO, Ceph RGW, AWS S3) through boto3, with
timeouts and path-style addressing; the bucket is created when missing. Nothing here is
public: staff open photos through the console's signed, expiring links.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Protocol

from bot.core.settings import Settings, get_settings

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9/_.-]{0,200}$")


class MediaNotFound(LookupError):
    """No file under this key."""


class MediaStoreError(RuntimeError):
    """The store could not be reached or refused the operation."""


def _checked(key: str) -> str:
    if not KEY_RE.fullmatch(key) or ".." in key:
        raise ValueError(f"not a media key: {key!r}")
    return key


class MediaStore(Protocol):
    """Put, get and delete files by key."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key` (replacing what was there)."""

    def get(self, key: str) -> bytes:
        """The file under `key`; raises `MediaNotFound`."""

    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""


def _code(error: Any) -> str:
    """The error code of a botocore ClientError (NoSuchKey, 404, …)."""
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


class LocalMediaStore:
    """Files in a directory of this machine."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _checked(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.chmod(temporary, 0o600)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise MediaNotFound(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3MediaStore:
    """Objects in one bucket of an S3-compatible store."""

    def __init__(self, settings: Settings, client: Optional[Any] = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = settings.s3_bucket
        self.region = settings.s3_region
        self.client = client or boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
            config=Config(
                connect_timeout=5,
                read_timeout=20,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )
        self._bucket_checked = False

    def _error(self, error: Exception) -> MediaStoreError:
        return MediaStoreError(f"object store: {type(error).__name__}: {error}")

    def _ensure_bucket(self) -> None:
        if self._bucket_checked:
            return
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            options: Dict[str, Any] = {}
            if self.region and self.region != "us-east-1":  # AWS refuses a bucket without it
                options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                self.client.create_bucket(Bucket=self.bucket, **options)
            except ClientError as error:
                if _code(error) != "BucketAlreadyOwnedByYou":  # another process was first
                    raise
        self._bucket_checked = True

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = _checked(key)  # before the bucket is looked at: a bad key changes nothing
        try:
            self._ensure_bucket()
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as error:
            raise self._error(error) from error

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=_checked(key))
            return bytes(answer["Body"].read())
        except ClientError as error:
            if _code(error) in ("NoSuchKey", "404", "NoSuchBucket"):
                raise MediaNotFound(key) from None
            raise self._error(error) from error
        except BotoCoreError as error:
            raise self._error(error) from error

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=_checked(key))
        except ClientError as error:
            if _code(error) == "NoSuchBucket":  # no bucket, no file: nothing to delete
                return
            raise self._error(error) from error
        except BotoCoreError as error:
            raise self._error(error) from error


def make_media_store(settings: Settings) -> MediaStore:
    """The store INTAKE_MEDIA_BACKEND names."""
    backend = settings.media_backend.strip().lower()
    if backend == "s3":
        return S3MediaStore(settings)
    if backend in ("", "local"):
        return LocalMediaStore(settings.media_dir)
    raise ValueError(f"INTAKE_MEDIA_BACKEND must be local or s3, not {settings.media_backend!r}")


_stores: Dict[tuple, MediaStore] = {}


def media_store() -> MediaStore:
    """This process's media store, built once per configuration (tests that change the
    settings get their own)."""
    settings = get_settings()
    key = (
        settings.media_backend,
        str(settings.media_dir),
        settings.s3_endpoint_url,
        settings.s3_bucket,
        settings.s3_region,
    )
    if key not in _stores:
        _stores[key] = make_media_store(settings)
    return _stores[key]


media_store.cache_clear = _stores.clear  # type: ignore[attr-defined]
