"""Profile pictures: an image upload, resized to at most AVATAR_MAX_SIDE pixels on its longest side,
stored content-addressed in the upload store (a Blob, like an attachment's bytes), named by the
user's `avatar_sha256`.

The picture is decoded and drawn again (Pillow), so nothing of the upload's metadata survives: a
JPEG stays a JPEG, anything else becomes a PNG (an animation its first frame), turned upright by its
EXIF Orientation first. The same picture set by two users is one Blob and one file. Avatars do not
count toward the upload quota (one small picture a user) and never expire; when a user replaces or
removes theirs, the old bytes go once no attachment or other user refers to them.
"""

import io
import logging
from dataclasses import dataclass
from pathlib import Path

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from PIL import Image, ImageOps

from accounts.models import User
from accounts.services import profile_changed
from media import services, store, validation
from media.models import Attachment, Blob
from messenger.deadlocks import retry_deadlocks

logger = logging.getLogger(__name__)

AVATAR_MAX_SIDE = 512
JPEG_QUALITY = 85


@dataclass(frozen=True, slots=True)
class Picture:
    data: bytes
    kind: validation.ImageKind
    width: int
    height: int


def avatar_set(*, user: User, file: UploadedFile) -> User:
    """Validate the upload by the image rules (media.validation), shrink it and make it the user's picture.

    Raises what media.validation raises for a refused image (ValidationError 400, FileTooLarge 413,
    DecodersBusy 503), and OSError (ENOSPC) when the disk is full and the store does not hold the bytes.
    """
    size = file.size or 0
    with services.on_disk(file) as path:
        info = validation.inspect_image(path, size=size)
        with validation.decode_slot():
            try:
                picture = _shrunk(path, info)
            except (OSError, ValueError, SyntaxError, EOFError) as error:  # what Pillow raises on bad data
                raise validation.reject(f"The file is not a valid {info.kind.name} image: it is corrupt.") from error
    with store.pending_file() as pending:
        pending.write(picture.data)
        sha256 = pending.finish()
        if pending.full is not None and not (store.exists(sha256) and Blob.objects.filter(sha256=sha256).exists()):
            raise pending.full
        old = _avatar_save(user=user, pending=pending, sha256=sha256, picture=picture)
    _forget(old, keep=sha256)
    user.refresh_from_db(fields=["avatar_sha256"])
    return user


def avatar_delete(*, user: User) -> User:
    """Remove the user's picture (nothing to do when there is none)."""
    with transaction.atomic():
        old = User.objects.select_for_update().filter(pk=user.pk).values_list("avatar_sha256", flat=True).first()
        User.objects.filter(pk=user.pk).update(avatar_sha256="")
        if old:
            profile_changed.send(sender=User, user_id=user.pk)
    _forget(old or "", keep="")
    user.refresh_from_db(fields=["avatar_sha256"])
    return user


def _shrunk(path: Path, info: validation.ImageInfo) -> Picture:
    """The first frame, upright, at most AVATAR_MAX_SIDE on its longest side, encoded afresh."""
    with Image.open(path, formats=[info.kind.pillow_format]) as image:
        if info.kind is validation.JPEG:
            # Decode at 1/2, 1/4 or 1/8 of the size where that still leaves enough pixels: far less memory.
            image.draft("RGB", (AVATAR_MAX_SIDE, AVATAR_MAX_SIDE))
        image.seek(0)
        frame = ImageOps.exif_transpose(image)
        frame.thumbnail((AVATAR_MAX_SIDE, AVATAR_MAX_SIDE), Image.Resampling.LANCZOS)
        output = io.BytesIO()
        if info.kind is validation.JPEG:
            frame.convert("RGB").save(output, "JPEG", quality=JPEG_QUALITY, optimize=True)
            kind = validation.JPEG
        else:
            has_alpha = frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info
            frame.convert("RGBA" if has_alpha else "RGB").save(output, "PNG", optimize=True)
            kind = validation.PNG
        return Picture(output.getvalue(), kind, frame.width, frame.height)


@retry_deadlocks
def _avatar_save(*, user: User, pending: store.PendingFile, sha256: str, picture: Picture) -> str:
    """Point the user at the picture's Blob (created if new) and put the file in place; the old sha256.

    The user's row is updated first, then the Blob row taken FOR UPDATE: blob_delete_if_unreferenced
    holds that same lock while it checks who refers to the blob, so either it finished first (the
    Blob is gone, and is created again here) or it waits and then sees this user's reference.
    """
    with transaction.atomic():
        old = User.objects.select_for_update().filter(pk=user.pk).values_list("avatar_sha256", flat=True).first()
        User.objects.filter(pk=user.pk).update(avatar_sha256=sha256)
        if old != sha256:
            profile_changed.send(sender=User, user_id=user.pk)
        if Blob.objects.select_for_update().filter(sha256=sha256).first() is None:
            if pending.full is not None:
                raise pending.full
            facts = services.BlobFacts(Attachment.Kind.IMAGE, picture.kind.content_type, picture.width, picture.height)
            services.blob_create(sha256, pending.size, facts)
        if pending.full is None:
            store.commit(pending, sha256)
    return old or ""


def _forget(old: str, *, keep: str) -> None:
    """Delete the previous picture's Blob and file once nothing refers to them."""
    if not old or old == keep:
        return
    blob_id = Blob.objects.filter(sha256=old).values_list("pk", flat=True).first()
    if blob_id is not None:
        services.blob_delete_if_unreferenced(blob_id=blob_id)
