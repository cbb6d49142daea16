"""Blobs in an S3-compatible bucket (settings.MEDIA_STORAGE = "s3"), through django-storages and boto3.

The keys are the local layout's paths (`<S3_PREFIX>/ab/cd/abcd…`, media.store.relative_path), one
object per content. An object is written by one PUT (or a multipart upload completed in one call),
so a reader sees no object or the whole one, as with the local os.replace. The bucket stays private:
the server streams the bytes to the client after its access check (media.views), so no bucket URL,
signed or not, ever leaves the server. Any error talking to the bucket is StorageUnavailable (503);
a missing object is FileNotFoundError, as on disk.
"""

import functools
import logging
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files import File
from storages.backends.s3 import S3Storage

from media.store import PendingFile, StoredBlob, relative_path, temp_dir
from messenger.exceptions import StorageUnavailable

logger = logging.getLogger(__name__)

KEY_RE = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{2})/(\1\2[0-9a-f]{60})$")
# Bounded waits: a bucket that does not answer costs a request seconds, not a worker forever.
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30
ATTEMPTS = 3


def _missing(error: ClientError) -> bool:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404 or error.response.get(
        "Error", {}
    ).get("Code") in {"404", "NoSuchKey"}


@contextmanager
def _reachable(action: str, sha256: str = "") -> Iterator[None]:
    """Turn what boto3 raises into StorageUnavailable (logged once, here)."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        logger.error("object store: %s %s failed: %s", action, sha256, error)
        raise StorageUnavailable() from error


class S3Blobs:
    """media.store.Blobs on a bucket."""

    sendfile = False  # the web server has no file to send: the server streams the object itself

    def __init__(self, storage: S3Storage, prefix: str) -> None:
        self.storage = storage
        self.prefix = prefix  # "" or "folder/"

    @property
    def _client(self) -> Any:
        return self.storage.connection.meta.client

    def key(self, sha256: str) -> str:
        return self.prefix + relative_path(sha256)

    def exists(self, sha256: str) -> bool:
        with _reachable("exists", sha256):
            return bool(self.storage.exists(self.key(sha256)))

    def save(self, pending: PendingFile, sha256: str) -> None:
        with _reachable("save", sha256), open(pending.path, "rb") as source:
            self.storage.save(self.key(sha256), File(source))

    def delete(self, sha256: str) -> bool:
        with _reachable("delete", sha256):
            existed = bool(self.storage.exists(self.key(sha256)))
            if existed:
                self.storage.delete(self.key(sha256))
        return existed

    def open(self, sha256: str) -> IO[bytes]:
        """The object's body as it arrives (botocore's StreamingBody): never held whole in memory."""
        with _reachable("open", sha256):
            try:
                answer = self._client.get_object(Bucket=self.storage.bucket_name, Key=self.key(sha256))
            except ClientError as error:
                if _missing(error):
                    raise FileNotFoundError(self.key(sha256)) from error
                raise
        body: IO[bytes] = answer["Body"]
        return body

    @contextmanager
    def local_copy(self, sha256: str) -> Iterator[Path]:
        """A download into the local temporary folder, removed when the block ends."""
        with tempfile.NamedTemporaryFile(dir=temp_dir(), prefix="download-", suffix=".part") as copy:
            with _reachable("download", sha256):
                try:
                    self._client.download_fileobj(self.storage.bucket_name, self.key(sha256), copy)
                except ClientError as error:
                    if _missing(error):
                        raise FileNotFoundError(self.key(sha256)) from error
                    raise
            copy.flush()
            yield Path(copy.name)

    def iter_blobs(self) -> Iterator[StoredBlob]:
        """Every object under the prefix named like a blob, in key (so sha256) order; others are skipped."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.storage.bucket_name, Prefix=self.prefix
        )
        with _reachable("list"):
            for page in pages:
                for entry in page.get("Contents", ()):
                    match = KEY_RE.match(entry["Key"][len(self.prefix) :])
                    if match:
                        yield StoredBlob(match.group(3), int(entry["Size"]), entry["LastModified"].timestamp())


def configured() -> S3Blobs:
    """The bucket and folder the settings name."""
    storage = _storage(
        bucket=settings.S3_BUCKET,
        endpoint_url=settings.S3_ENDPOINT_URL,
        region=settings.S3_REGION,
        addressing_style=settings.S3_ADDRESSING_STYLE,
        access_key=settings.S3_ACCESS_KEY_ID,
        secret_key=settings.S3_SECRET_ACCESS_KEY,
    )
    folder = settings.S3_PREFIX.strip("/")
    return S3Blobs(storage, f"{folder}/" if folder else "")


@functools.lru_cache(maxsize=8)
def _storage(
    *, bucket: str, endpoint_url: str, region: str, addressing_style: str, access_key: str, secret_key: str
) -> S3Storage:
    """One S3Storage per configuration: it makes one boto3 client per thread and keeps it (a client
    costs its service model's loading, near a second on a busy machine; a request then takes ms).
    Keys are passed whole (media.s3.S3Blobs.key), so its own `location` stays empty."""
    client_config = Config(
        s3={"addressing_style": addressing_style},
        signature_version="s3v4",
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"max_attempts": ATTEMPTS, "mode": "standard"},
        # botocore >= 1.36 adds CRC checksums to every PUT by default, which several S3-compatible
        # servers (older MinIO and Ceph RGW among them) refuse; send them only where S3 requires them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    storage = S3Storage(
        bucket_name=bucket,
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        access_key=access_key or None,
        secret_key=secret_key or None,
        file_overwrite=True,  # the same name is the same bytes
        default_acl=None,  # private, as the bucket is
        client_config=client_config,
    )
    return storage
