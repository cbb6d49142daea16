"""Every write to attachments and blobs: storing an upload once per content, and cleaning up."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from accounts.models import User
from media import store, validation
from media.models import Attachment, Blob

logger = logging.getLogger(__name__)


def attachment_create(*, uploader: User, file: UploadedFile) -> Attachment:
    """Validate an uploaded image by its bytes, store it once per content, record the upload.

    JPEG location data is removed first, so the sha256 names the cleaned bytes: the same
    photo uploaded twice (by anyone) is one Blob and one file, and two Attachments.
    Raises ValidationError({"file": [...]}) for a refused file and FileTooLarge past the limit.
    """
    size = file.size or 0
    if size > settings.UPLOAD_MAX_BYTES:
        raise validation.FileTooLarge(settings.UPLOAD_MAX_BYTES)
    with _on_disk(file) as path:
        info = validation.inspect_image(path, size=size)
        with store.pending_file() as pending:
            if info.kind is validation.JPEG:
                try:
                    validation.write_clean_jpeg(path, pending.write)
                except validation.CorruptJpeg as error:
                    raise validation.reject("The file is not a valid JPEG image: its structure is corrupt.") from error
            else:
                with open(path, "rb") as source:
                    pending.copy_from(source)
            sha256 = pending.finish()
            if pending.size != size:
                # What is stored must decode as well as what was sent.
                info = validation.inspect_image(pending.path, size=pending.size)
            return _attachment_save(
                uploader=uploader, pending=pending, sha256=sha256, info=info, original_name=file.name or ""
            )


@contextmanager
def _on_disk(file: UploadedFile) -> Iterator[Path]:
    """A path to the upload's bytes: the upload handler's temporary file, or a copy of an in-memory one."""
    temporary_file_path = getattr(file, "temporary_file_path", None)
    if temporary_file_path is not None:
        yield Path(temporary_file_path())
        return
    with store.pending_file() as copy:
        for chunk in file.chunks():
            copy.write(chunk)
        copy.finish()
        yield copy.path


@transaction.atomic
def _attachment_save(
    *, uploader: User, pending: store.PendingFile, sha256: str, info: validation.ImageInfo, original_name: str
) -> Attachment:
    blob = _blob_locked(sha256)
    if blob is None:
        blob = Blob(
            sha256=sha256,
            size=pending.size,
            content_type=info.kind.content_type,
            width=info.width,
            height=info.height,
        )
        blob.full_clean(validate_unique=False)
        try:
            with transaction.atomic():
                blob.save(force_insert=True)
        except IntegrityError:
            # An identical upload committed the same sha256 first: share its Blob.
            blob = Blob.objects.select_for_update().get(sha256=sha256)
    # Put the file in place while holding the Blob's row lock, so cleanup_blobs (which deletes
    # under the same lock) cannot remove it between here and the Attachment's commit.
    store.commit(pending, sha256)
    attachment = Attachment(blob=blob, uploader=uploader, original_name=original_name[:255])
    attachment.full_clean()
    attachment.save(force_insert=True)
    return attachment


def _blob_locked(sha256: str) -> Blob | None:
    """The Blob for this content under a row lock, or None.

    A plain read first, then a lock by primary key: a locking read of a missing row could take
    a gap lock on MySQL, and two identical first uploads would then deadlock on their inserts.
    """
    found = Blob.objects.filter(sha256=sha256).values_list("pk", flat=True).first()
    if found is None:
        return None
    return Blob.objects.select_for_update().filter(pk=found).first()


def blob_delete_if_unreferenced(*, blob_id: int) -> bool:
    """Delete a Blob and its file if no Attachment refers to it; True when deleted.

    The file goes while the row lock is held (see _attachment_save): an upload of the same
    bytes waits, finds no Blob, creates one and writes the file again.
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
