"""Every write to attachments and blobs: storing an upload (an image or any file) once per content, and cleaning up."""

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from media import access, containers, names, selectors, store, validation
from media.models import Attachment, Blob
from messenger.deadlocks import retry_deadlocks

logger = logging.getLogger(__name__)


class QuotaExceeded(Exception):
    """The upload would take the uploader past settings.UPLOAD_QUOTA_BYTES (answered 413)."""

    def __init__(self, *, used: int, incoming: int, quota: int) -> None:
        self.used, self.incoming, self.quota = used, incoming, quota
        super().__init__(
            f"Your uploads already use {_size_text(used)} of your {_size_text(quota)}; this file "
            f"({_size_text(incoming)}) does not fit. Uploads that no message carries are deleted "
            f"{settings.UPLOAD_UNATTACHED_HOURS} hours after they were sent, which frees their room."
        )


def _size_text(size: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True, slots=True)
class BlobFacts:
    """What a new Blob records besides its sha256 and size: an image's type and size, or a file's."""

    kind: str  # Attachment.Kind
    content_type: str
    width: int | None = None
    height: int | None = None

    @classmethod
    def of_image(cls, info: validation.ImageInfo) -> "BlobFacts":
        return cls(Attachment.Kind.IMAGE, info.kind.content_type, info.width, info.height)


FILE_FACTS = BlobFacts(Attachment.Kind.FILE, validation.FILE_CONTENT_TYPE)


def attachment_create(*, uploader: User, file: UploadedFile) -> Attachment:
    """Store an upload once per content and record it: an image, or any other file.

    Bytes that announce PNG, JPEG, GIF or WebP by their magic number are an image, and must be one:
    validated by their bytes (media.validation; a corrupt one is refused, never kept as a file),
    at most UPLOAD_MAX_BYTES, their metadata removed first (media.containers keeps only what draws
    the image), so the sha256 names the cleaned bytes: the same photo uploaded twice (by anyone,
    whatever metadata each copy carried) is one Blob and one file, and two Attachments.
    Anything else is a file (kind "file"), at most FILE_MAX_BYTES, stored byte for byte.
    Raises ValidationError({"file": [...]}) for a refused file, FileTooLarge past the limit and
    QuotaExceeded past the uploader's quota (checked first, against the size as sent: no decode
    for a user who has no room);
    OSError (ENOSPC) when the disk is full and the store does not hold these bytes yet: then no
    row is written and no file is left, half or whole.
    """
    size = file.size or 0
    largest = validation.largest_upload_bytes()
    if size > largest:
        raise validation.FileTooLarge(largest)
    _check_quota(uploader, size)
    raw_name = file.name or ""
    with on_disk(file) as path:
        if size == 0:
            raise validation.reject("The file is empty.")
        if validation.sniff_file(path) is None:
            return _file_create(uploader=uploader, path=path, size=size, raw_name=raw_name)
        info = validation.inspect_image(path, size=size)
        with store.pending_file() as pending:
            try:
                containers.write_clean(info.kind.pillow_format, path, pending.write)
            except containers.CorruptImage as error:
                raise validation.reject(f"The file is not a valid {info.kind.name} image: it is corrupt.") from error
            sha256 = pending.finish()
            if pending.full is not None:
                # The disk is full: only bytes already stored (and validated when they were) can be
                # recorded; anything else is the OSError, answered 507.
                _require_stored(pending, sha256)
            elif pending.size != size:
                # What is stored must decode as well as what was sent.
                info = validation.inspect_image(pending.path, size=pending.size)
            return _attachment_save(
                uploader=uploader, pending=pending, sha256=sha256, facts=BlobFacts.of_image(info), raw_name=raw_name
            )


def _file_create(*, uploader: User, path: Path, size: int, raw_name: str) -> Attachment:
    """Store a file that is not an image as it was sent (never opened, never rendered)."""
    if size > settings.FILE_MAX_BYTES:
        raise validation.FileTooLarge(settings.FILE_MAX_BYTES)
    with store.pending_file() as pending:
        with open(path, "rb") as source:
            while chunk := source.read(store.CHUNK_SIZE):
                pending.write(chunk)
        sha256 = pending.finish()
        if pending.full is not None:
            _require_stored(pending, sha256)
        return _attachment_save(uploader=uploader, pending=pending, sha256=sha256, facts=FILE_FACTS, raw_name=raw_name)


def _require_stored(pending: store.PendingFile, sha256: str) -> None:
    """On a full disk, only bytes the store already holds can be recorded; else the disk's OSError."""
    if not (store.exists(sha256) and Blob.objects.filter(sha256=sha256).exists()):
        assert pending.full is not None
        raise pending.full


def _check_quota(uploader: User, size: int) -> None:
    """Refuse an upload that would take its uploader past UPLOAD_QUOTA_BYTES (0: no quota).

    Not locked: uploads racing each other can overshoot by what is in flight (at most
    HTTP_THREADS x UPLOAD_MAX_BYTES per process), never by more, which keeps the check one query.
    """
    quota = settings.UPLOAD_QUOTA_BYTES
    if not quota:
        return
    used = selectors.storage_used_by(uploader)
    if used + size > quota:
        raise QuotaExceeded(used=used, incoming=size, quota=quota)


@contextmanager
def on_disk(file: UploadedFile) -> Iterator[Path]:
    """A path to the upload's bytes: the upload handler's temporary file, or a copy of an in-memory one.

    The copy is an anonymous file in memory where the system has them (Linux's memfd_create), so
    that an upload received into memory because the disk was full needs no disk here either.
    """
    temporary_file_path = getattr(file, "temporary_file_path", None)
    if temporary_file_path is not None:
        yield Path(temporary_file_path())
        return
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        descriptor = memfd_create("upload")
        try:
            with open(descriptor, "wb", closefd=False) as copy_in_memory:
                for chunk in file.chunks():
                    copy_in_memory.write(chunk)
            yield Path(f"/proc/self/fd/{descriptor}")
        finally:
            os.close(descriptor)
        return
    with store.pending_file() as copy:
        for chunk in file.chunks():
            copy.write(chunk)
        copy.finish()
        yield copy.path


@retry_deadlocks
def _attachment_save(
    *, uploader: User, pending: store.PendingFile, sha256: str, facts: BlobFacts, raw_name: str
) -> Attachment:
    """Find or create the Blob, record the Attachment, then put the file in place; all in one transaction.

    No row is locked FOR UPDATE: identical first uploads that lose the unique-index race hold a
    shared lock on the winner's key, and asking for an exclusive one would deadlock them all.
    Instead the Attachment's foreign key check holds a shared lock on the Blob row until commit,
    which is what keeps cleanup_blobs (which takes FOR UPDATE) from deleting it meanwhile; if it
    deleted the Blob just before, the insert fails on the foreign key and we start again.
    Those retries then insert the same sha256 together while the deleted row's index entry
    awaits purge, which InnoDB can answer with a deadlock: the victim runs again (retry_deadlocks).
    """
    attempts = 3
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                blob = Blob.objects.filter(sha256=sha256).first()
                if blob is None:
                    if pending.full is not None:  # the stored copy went meanwhile (cleanup_blobs)
                        raise pending.full
                    blob = blob_create(sha256, pending.size, facts)
                attachment = Attachment(
                    blob=blob,
                    uploader=uploader,
                    kind=facts.kind,
                    original_name=raw_name[:255],
                    name=names.safe_name(raw_name),
                )
                # The database checks the blob (and so takes the shared lock described above).
                attachment.full_clean(exclude=["blob"])
                attachment.save(force_insert=True)
                # Replacing an existing file is harmless (same bytes) and restores one that went missing;
                # on a full disk the stored file (checked above) is kept as it is.
                if pending.full is None:
                    store.commit(pending, sha256)
            return attachment
        except IntegrityError:
            if attempt == attempts - 1:
                raise
            logger.info("blob %s went away during an upload; trying again", sha256)
    raise AssertionError("unreachable")


def blob_create(sha256: str, size: int, facts: BlobFacts) -> Blob:
    blob = Blob(sha256=sha256, size=size, content_type=facts.content_type, width=facts.width, height=facts.height)
    blob.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            blob.save(force_insert=True)
    except IntegrityError:
        # An identical upload committed the same sha256 first: share its Blob. (Django runs MySQL
        # in READ COMMITTED, so this read sees the row that just made our insert fail.)
        return Blob.objects.get(sha256=sha256)
    return blob


@retry_deadlocks
def blob_delete_if_unreferenced(*, blob_id: int) -> bool:
    """Delete a Blob and its file if no Attachment refers to it and it is nobody's avatar; True when deleted.

    The file goes while the row lock is held. An upload of the same bytes that is recording its
    Attachment holds a shared lock on the row, so this waits for it and then finds the reference;
    one that comes after finds no Blob, creates one and writes the file again (see _attachment_save).
    """
    with transaction.atomic():
        blob = Blob.objects.select_for_update().filter(pk=blob_id).first()
        if blob is None or Attachment.objects.filter(blob_id=blob.pk).exists() or _is_avatar(blob.sha256):
            return False
        sha256 = blob.sha256
        blob.delete()
        store.delete(sha256)
    logger.info("deleted unreferenced blob %s", sha256)
    return True


@retry_deadlocks
def attachment_delete_if_unattached(*, attachment_id: int) -> bool:
    """Delete an Attachment that no message carries (never sent, or its message was deleted).

    Its Blob may then be unreferenced: blob_delete_if_unreferenced takes care of it. A message
    being sent with it holds a shared lock on the row (foreign key check), so this waits for it
    and then sees the reference.
    """
    with transaction.atomic():
        attachment = Attachment.objects.select_for_update().filter(pk=attachment_id).first()
        if attachment is None or access.carriers(attachment.pk).exists():
            return False
        attachment.delete()
    return True


def attachment_expire(*, attachment_id: int) -> bool:
    """Delete an upload no message carries and, when no other upload shares its bytes, its Blob and
    file; True when the upload went. What cleanup_blobs --unattached-days and the automatic
    expiry both do, one upload at a time (see attachment_delete_if_unattached for the races)."""
    blob_id = Attachment.objects.filter(pk=attachment_id).values_list("blob_id", flat=True).first()
    if blob_id is None or not attachment_delete_if_unattached(attachment_id=attachment_id):
        return False
    blob_delete_if_unreferenced(blob_id=blob_id)
    return True


SWEEP_BATCH = 20  # uploads expired per sweep: bounded work on the upload that pays for it
GLOBAL_SWEEP_SECONDS = 300  # how often a process looks at everyone's expired uploads
_last_global_sweep = float("-inf")  # the first upload of a process sweeps (monotonic may be < 300 s after boot)
_global_sweep_lock = threading.Lock()


def attachments_sweep_expired(*, uploader: User) -> int:
    """Expire uploads older than UPLOAD_UNATTACHED_HOURS that no message carries; how many went.

    Called on every upload, before its quota check, so no cron is needed: the uploader's own
    expired uploads first (on their index, so a full quota frees itself), then, at most every
    GLOBAL_SWEEP_SECONDS per process, everyone's (a scan of old uploads). Each sweep deletes at
    most SWEEP_BATCH uploads; a backlog drains over the next uploads. 0 hours: never.
    """
    global _last_global_sweep
    hours = settings.UPLOAD_UNATTACHED_HOURS
    if not hours:
        return 0
    cutoff = timezone.now() - timedelta(hours=hours)
    own = selectors.unattached_attachments(created_before=cutoff, uploader=uploader)
    expired = list(own.values_list("pk", flat=True)[:SWEEP_BATCH])
    with _global_sweep_lock:
        due = time.monotonic() - _last_global_sweep >= GLOBAL_SWEEP_SECONDS
        if due:
            _last_global_sweep = time.monotonic()
    if due:
        everyone = selectors.unattached_attachments(created_before=cutoff).exclude(pk__in=expired)
        expired += everyone.values_list("pk", flat=True)[:SWEEP_BATCH]
    deleted = sum(attachment_expire(attachment_id=pk) for pk in expired)
    if deleted:
        logger.info("expired %d unattached upload(s) older than %d hours", deleted, hours)
    return deleted


def blob_reclean(*, blob_id: int) -> str | None:
    """Run a stored blob's bytes through today's cleaners (media.containers); the new sha256 when
    they changed, else None.

    For files stored under older, laxer rules (GPS in IFD1, GIF XMP, bytes after a GIF trailer):
    the cleaned bytes get their own Blob (or join the one that already holds them), the blob's
    Attachments move to it in one transaction holding the old row FOR UPDATE, and the old row goes;
    its file is removed once that commits. Attachment ids and URLs stay; their ETag (the sha256)
    changes, as it should for different bytes.
    """
    blob = Blob.objects.filter(pk=blob_id).first()
    kind = validation.KINDS.get(blob.content_type) if blob is not None else None
    if blob is None or kind is None or not store.exists(blob.sha256):
        return None
    if _is_avatar(blob.sha256):
        return None  # drawn afresh by media.avatars: no metadata to remove, and users name it by its sha256
    old_sha256 = blob.sha256
    with store.pending_file() as pending:
        try:
            with store.local_copy(old_sha256) as stored:
                containers.write_clean(kind.pillow_format, stored, pending.write)
        except containers.CorruptImage:
            logger.warning("blob %s cannot be walked; left as it is", old_sha256)
            return None
        sha256 = pending.finish()
        if pending.full is not None:
            raise pending.full
        if sha256 == old_sha256:
            return None
        facts = BlobFacts(Attachment.Kind.IMAGE, kind.content_type, blob.width, blob.height)
        with transaction.atomic():
            if Blob.objects.select_for_update().filter(pk=blob_id).first() is None:
                return None
            target = Blob.objects.filter(sha256=sha256).first() or blob_create(sha256, pending.size, facts)
            Attachment.objects.filter(blob_id=blob_id).update(blob=target)
            Blob.objects.filter(pk=blob_id).delete()
            store.commit(pending, sha256)
            transaction.on_commit(lambda: store.delete(old_sha256))
    logger.info("blob %s cleaned again: now %s", old_sha256, sha256)
    return sha256


def _is_avatar(sha256: str) -> bool:
    return User.objects.filter(avatar_sha256=sha256).exists()
