"""Every write to attachments and blobs: storing an upload once per content, and cleaning up."""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from accounts.models import User
from media import access, containers, store, validation
from media.models import Attachment, Blob
from messenger.deadlocks import retry_deadlocks

logger = logging.getLogger(__name__)


def attachment_create(*, uploader: User, file: UploadedFile) -> Attachment:
    """Validate an uploaded image by its bytes, store it once per content, record the upload.

    Metadata is removed first (media.containers keeps only what draws the image), so the sha256
    names the cleaned bytes: the same photo uploaded twice (by anyone, whatever metadata each copy
    carried) is one Blob and one file, and two Attachments.
    Raises ValidationError({"file": [...]}) for a refused file and FileTooLarge past the limit;
    OSError (ENOSPC) when the disk is full and the store does not hold these bytes yet: then no
    row is written and no file is left, half or whole.
    """
    size = file.size or 0
    if size > settings.UPLOAD_MAX_BYTES:
        raise validation.FileTooLarge(settings.UPLOAD_MAX_BYTES)
    with _on_disk(file) as path:
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
                if not (store.exists(sha256) and Blob.objects.filter(sha256=sha256).exists()):
                    raise pending.full
            elif pending.size != size:
                # What is stored must decode as well as what was sent.
                info = validation.inspect_image(pending.path, size=pending.size)
            return _attachment_save(
                uploader=uploader, pending=pending, sha256=sha256, info=info, original_name=file.name or ""
            )


@contextmanager
def _on_disk(file: UploadedFile) -> Iterator[Path]:
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
    *, uploader: User, pending: store.PendingFile, sha256: str, info: validation.ImageInfo, original_name: str
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
                    blob = _blob_create(sha256, pending.size, info)
                attachment = Attachment(blob=blob, uploader=uploader, original_name=original_name[:255])
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


def _blob_create(sha256: str, size: int, info: validation.ImageInfo) -> Blob:
    blob = Blob(sha256=sha256, size=size, content_type=info.kind.content_type, width=info.width, height=info.height)
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
    """Delete a Blob and its file if no Attachment refers to it; True when deleted.

    The file goes while the row lock is held. An upload of the same bytes that is recording its
    Attachment holds a shared lock on the row, so this waits for it and then finds the reference;
    one that comes after finds no Blob, creates one and writes the file again (see _attachment_save).
    """
    with transaction.atomic():
        blob = Blob.objects.select_for_update().filter(pk=blob_id).first()
        if blob is None or Attachment.objects.filter(blob_id=blob.pk).exists():
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
