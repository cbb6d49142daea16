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
"""

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

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


def exists(sha256: str) -> bool:
    return blob_path(sha256).is_file()


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


def commit(pending: PendingFile, sha256: str) -> Path:
    """Atomically put a finished PendingFile at its content address.

    Replacing an existing file is harmless (same name, same bytes) and restores a file that
    went missing; readers holding the old file open keep reading the old inode.
    """
    if pending.full is not None:
        raise pending.full
    destination = blob_path(sha256)
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(pending.path, destination)
    _fsync_dir(destination.parent)
    return destination


def delete(sha256: str) -> bool:
    """Remove a blob's file; True when there was one. Empty shard folders are left in place."""
    try:
        blob_path(sha256).unlink()
    except FileNotFoundError:
        return False
    return True


def iter_blob_files() -> Iterator[tuple[str, Path]]:
    """Every (sha256, path) in the store's shards; the temporary folder and strangers are skipped."""
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
                if path.is_file() and SHA256_RE.match(name) and name[:2] == first.name and name[2:4] == second.name:
                    yield name, path


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
