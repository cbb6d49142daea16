"""The content-addressed file store under settings.UPLOADS_DIR.

A blob's file is named by the sha256 of its bytes and sharded by the first two byte pairs
(`ab/cd/abcd…`), so no folder grows past a few thousand entries. Files are written to a
temporary file under `UPLOADS_DIR/tmp` (the same file system as the shards, so the final
os.replace is atomic), fsynced, then renamed into place: a reader sees either no file or
the whole file, never a partial one, and a crash leaves at most a stray temporary file
(removed by `manage.py cleanup_blobs`).

A full disk (ENOSPC, EDQUOT) does not stop the hashing: a PendingFile that could not be
written still knows its sha256, so bytes the store already holds are recognised and need no
write (media.services); bytes it does not hold fail with the OSError, answered 507
(messenger.exceptions), and the partial temporary file is removed.

Where the finished blobs live is settings.MEDIA_STORAGE: this folder ("local", the default) or an
S3-compatible bucket ("s3", media.s3) under the same keys. Everything that reads, writes, deletes or
lists a blob goes through the functions below (exists, commit, delete, open_blob, local_copy,
iter_blobs), which hand the work to the configured Blobs; nothing else asks which one it is.
Uploads are received, hashed and validated in the local temporary folder on both.
"""

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from django.conf import settings

from messenger.exceptions import STORAGE_FULL_ERRNOS

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
TEMP_DIR_NAME = "tmp"
CHUNK_SIZE = 64 * 1024
FILE_MODE = 0o644  # Django's FILE_UPLOAD_PERMISSIONS default; lets nginx read files for X-Accel-Redirect


def is_storage_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in STORAGE_FULL_ERRNOS


def root() -> Path:
    # Read on every call: tests point UPLOADS_DIR at a temporary folder.
    return Path(settings.UPLOADS_DIR)


def temp_dir() -> Path:
    path = root() / TEMP_DIR_NAME
    path.mkdir(parents=True, exist_ok=True)
    return path


def relative_path(sha256: str) -> str:
    if not SHA256_RE.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def blob_path(sha256: str) -> Path:
    return root() / relative_path(sha256)


class PendingFile:
    """A temporary file that hashes what is written to it; commit() moves it into the store.

    When the disk is full, writing stops but hashing goes on: `full` then holds the OSError,
    the file is incomplete (never to be committed) and `sha256` still names all the bytes.
    """

    def __init__(self, file: IO[bytes], path: Path) -> None:
        self._file = file
        self.path = path
        self._hash = hashlib.sha256()
        self.size = 0
        self.full: OSError | None = None

    def write(self, data: bytes) -> None:
        if self.full is None:
            try:
                self._file.write(data)
            except OSError as error:
                self._note_full(error)
        self._hash.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def complete(self) -> bool:
        return self.full is None

    def finish(self) -> str:
        """Flush and fsync the bytes to disk; returns their sha256. Call once, before commit()."""
        try:
            if self.full is None:
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()
        except OSError as error:
            self._note_full(error)
            with suppress(OSError):  # what is left in the buffer cannot be written either
                self._file.close()
        if self.full is None:
            os.chmod(self.path, FILE_MODE)
        return self.sha256

    def _note_full(self, error: OSError) -> None:
        if not is_storage_full(error):
            raise error
        self.full = error


@contextmanager
def pending_file() -> Iterator[PendingFile]:
    """A PendingFile that is removed on exit unless commit() moved it into the store."""
    handle = tempfile.NamedTemporaryFile(dir=temp_dir(), prefix="upload-", suffix=".part", delete=False)  # noqa: SIM115
    pending = PendingFile(handle, Path(handle.name))
    try:
        yield pending
    finally:
        with suppress(OSError):  # a full disk's unwritten buffer
            handle.close()
        pending.path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A blob as the store lists it: cleanup_blobs compares these with the Blob rows."""

    sha256: str
    size: int
    modified: float  # seconds since the epoch


class Blobs(Protocol):
    """Where finished blobs live, by sha256. LocalBlobs (UPLOADS_DIR) and media.s3.S3Blobs."""

    # The web server can send the file itself (SENDFILE_HEADER): only blobs on a local disk.
    sendfile: bool

    def exists(self, sha256: str) -> bool: ...

    def save(self, pending: PendingFile, sha256: str) -> None: ...

    def delete(self, sha256: str) -> bool: ...

    def open(self, sha256: str) -> IO[bytes]: ...

    def local_copy(self, sha256: str) -> AbstractContextManager[Path]: ...

    def iter_blobs(self) -> Iterator[StoredBlob]: ...


class LocalBlobs:
    """Blobs as files in UPLOADS_DIR's shards (the default)."""

    sendfile = True

    def exists(self, sha256: str) -> bool:
        return blob_path(sha256).is_file()

    def save(self, pending: PendingFile, sha256: str) -> None:
        """os.replace into place, then the folder fsynced: the rename survives a crash."""
        destination = blob_path(sha256)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(pending.path, destination)
        _fsync_dir(destination.parent)

    def delete(self, sha256: str) -> bool:
        """Empty shard folders are left in place."""
        try:
            blob_path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def open(self, sha256: str) -> IO[bytes]:
        return open(blob_path(sha256), "rb")  # the caller closes it

    def local_copy(self, sha256: str) -> AbstractContextManager[Path]:
        return nullcontext(blob_path(sha256))

    def iter_blobs(self) -> Iterator[StoredBlob]:
        """The temporary folder and strangers are skipped."""
        base = root()
        if not base.is_dir():
            return
        for first in sorted(base.iterdir()):
            if not (first.is_dir() and re.fullmatch(r"[0-9a-f]{2}", first.name)):
                continue
            for second in sorted(first.iterdir()):
                if not (second.is_dir() and re.fullmatch(r"[0-9a-f]{2}", second.name)):
                    continue
                for path in sorted(second.iterdir()):
                    name = path.name
                    if not (SHA256_RE.match(name) and name[:2] == first.name and name[2:4] == second.name):
                        continue
                    try:
                        facts = path.stat()
                    except FileNotFoundError:
                        continue
                    if path.is_file():
                        yield StoredBlob(name, facts.st_size, facts.st_mtime)


LOCAL = LocalBlobs()


def backend() -> Blobs:
    """The configured Blobs, read from settings on every call (tests switch MEDIA_STORAGE)."""
    if settings.MEDIA_STORAGE == "s3":
        from media import s3  # boto3 is imported only by servers that use it

        return s3.configured()
    return LOCAL


def exists(sha256: str) -> bool:
    return backend().exists(sha256)


def commit(pending: PendingFile, sha256: str) -> None:
    """Put a finished PendingFile at its content address, whole or not at all.

    Replacing an existing blob is harmless (same name, same bytes) and restores one that went
    missing; readers holding the old file open keep reading the old inode (or object version).
    """
    if pending.full is not None:
        raise pending.full
    backend().save(pending, sha256)


def delete(sha256: str) -> bool:
    """Remove a blob's bytes; True when there were some."""
    return backend().delete(sha256)


def open_blob(sha256: str) -> IO[bytes]:
    """The blob's bytes to read (the caller closes it); FileNotFoundError when there are none."""
    return backend().open(sha256)


def local_copy(sha256: str) -> AbstractContextManager[Path]:
    """A path to the blob's bytes on this machine for as long as the block runs (a download from a bucket)."""
    return backend().local_copy(sha256)


def iter_blobs() -> Iterator[StoredBlob]:
    """Every blob the store holds, in sha256 order."""
    return backend().iter_blobs()


def iter_temp_files() -> Iterator[Path]:
    folder = root() / TEMP_DIR_NAME
    if folder.is_dir():
        yield from (path for path in sorted(folder.iterdir()) if path.is_file())


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: fsync the folder that holds the new name (POSIX only)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
