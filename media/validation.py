"""Judging an uploaded file by its bytes (media.containers removes its metadata before it is stored).

Nothing here looks at the declared Content-Type or the file name. A file is accepted when
its first bytes carry the magic number of PNG, JPEG, GIF or WebP, Pillow (restricted to that
one format) parses its header with no more than settings.UPLOAD_MAX_PIXELS pixels, an animation
shows no more than UPLOAD_MAX_FRAMES frames and UPLOAD_MAX_ANIMATION_PIXELS pixels in all (frames
counted on the container, nothing decoded), verify() passes and the first frame really decodes
(a PNG's image data inflated scanline by scanline, media.containers.check_png_pixels; the other
formats decoded by Pillow, at most UPLOAD_MAX_CONCURRENT_DECODES at once).
Refusals raise ValidationError({"file": [...]}) naming the reason; a file over
settings.UPLOAD_MAX_BYTES raises FileTooLarge (413).
"""

import functools
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from PIL import Image

from media import containers


@dataclass(frozen=True)
class ImageKind:
    name: str  # as people say it, for messages
    pillow_format: str
    content_type: str
    extension: str


PNG = ImageKind("PNG", "PNG", "image/png", "png")
JPEG = ImageKind("JPEG", "JPEG", "image/jpeg", "jpg")
GIF = ImageKind("GIF", "GIF", "image/gif", "gif")
WEBP = ImageKind("WebP", "WEBP", "image/webp", "webp")
KINDS = {kind.content_type: kind for kind in (PNG, JPEG, GIF, WEBP)}


@dataclass(frozen=True)
class ImageInfo:
    kind: ImageKind
    width: int
    height: int


# What any file that is not an image is stored and served as: never a type a browser would render.
FILE_CONTENT_TYPE = "application/octet-stream"


class FileTooLarge(Exception):
    """The upload is larger than its kind's limit (answered with 413): settings.UPLOAD_MAX_BYTES for
    an image, settings.FILE_MAX_BYTES for any other file."""

    def __init__(self, limit: int, what: str = "file") -> None:
        self.limit = limit
        self.message = too_large_message(limit, what)
        super().__init__(self.message)


def too_large_message(limit: int, what: str = "file") -> str:
    megabyte = 1024 * 1024
    size = f"{limit // megabyte} MB" if limit % megabyte == 0 else f"{limit} bytes"
    if what == "image":
        return f"The image is too large: at most {size} is accepted for an image."
    return f"The file is too large: at most {size} is accepted."


def largest_upload_bytes() -> int:
    """The most an upload of any kind may weigh: what the upload handler lets through."""
    return max(settings.UPLOAD_MAX_BYTES, settings.FILE_MAX_BYTES)


def reject(message: str) -> ValidationError:
    return ValidationError({"file": [message]})


NOT_AN_IMAGE = "The file is not a PNG, JPEG, GIF or WebP image (judged by its content, not its name or type)."


def sniff(head: bytes) -> ImageKind | None:
    """The image kind announced by a file's magic number, from its first 12 bytes."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    return None


def sniff_file(path: Path) -> ImageKind | None:
    """The image kind the file's magic number announces, if any: such a file must then decode as one."""
    with open(path, "rb") as file:
        return sniff(file.read(12))


def inspect_image(path: Path, *, size: int) -> ImageInfo:
    """Accept or refuse the file at `path` (`size` bytes long) by its content."""
    limit = settings.UPLOAD_MAX_BYTES
    if size > limit:
        raise FileTooLarge(limit, "image")
    if size == 0:
        raise reject("The file is empty.")
    with open(path, "rb") as file:
        kind = sniff(file.read(12))
    if kind is None:
        raise reject(NOT_AN_IMAGE)
    max_pixels = settings.UPLOAD_MAX_PIXELS
    too_many_pixels = reject(
        f"The image has too many pixels: at most {max_pixels / 1_000_000:g} megapixels are accepted."
    )
    try:
        if kind is WEBP:
            # Read on the bytes: opening a WebP allocates its canvas (containers.webp_canvas_size).
            canvas_width, canvas_height = containers.webp_canvas_size(path)
            if canvas_width * canvas_height > max_pixels:
                raise too_many_pixels
        # A PNG is checked without decoding (check_png_pixels); other formats are opened and decoded
        # by Pillow holding a decode slot.
        with nullcontext() if kind is PNG else decode_slot():
            width, height = _check_with_pillow(kind, path, too_many_pixels)
    except (ValidationError, DecodersBusy):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many_pixels from None
    except Exception as error:  # CorruptImage; Pillow's OSError, SyntaxError, ValueError, EOFError, struct.error…
        raise reject(f"The file is not a valid {kind.name} image: it is truncated or corrupt.") from error
    return ImageInfo(kind=kind, width=width, height=height)


def _check_with_pillow(kind: ImageKind, path: Path, too_many_pixels: ValidationError) -> tuple[int, int]:
    """Parse the header, count an animation's frames, verify(), then decode the first frame; the size."""
    # Pillow warns past Image.MAX_IMAGE_PIXELS and raises past twice that (see MediaConfig.ready);
    # the warning is an error here, and the explicit check below applies the setting exactly,
    # before anything is decoded.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path, formats=[kind.pillow_format]) as image:
            width, height = image.size
            if width < 1 or height < 1:
                raise reject(f"The {kind.name} image has no pixels.")
            if width * height > settings.UPLOAD_MAX_PIXELS:
                raise too_many_pixels
            _check_animation(kind, path, width * height)
            image.verify()
        if kind is PNG:
            # Inflated scanline by scanline: ~1 MB whatever the size, where load() holds the frame.
            containers.check_png_pixels(path)
            return width, height
        # verify() leaves the image unusable: open again and decode the first frame for real.
        with Image.open(path, formats=[kind.pillow_format]) as image:
            if kind is JPEG:
                # Every byte of the scan is still entropy-decoded, but the DCT is scaled down 8x:
                # a 40 MP photo takes ~2 MB instead of ~120 MB to check.
                image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
    return width, height


class DecodersBusy(Exception):
    """No decode slot came free within UPLOAD_DECODE_WAIT_SECONDS (answered 503 with Retry-After)."""


@functools.cache
def _decode_slots(count: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(count)


@contextmanager
def decode_slot() -> Iterator[None]:
    """Hold one of the process's UPLOAD_MAX_CONCURRENT_DECODES slots while an image is decoded.

    A decoded frame takes up to 4 bytes a pixel (~160 MB at 40 MP) whatever the file's size, so
    without a bound 16 concurrent uploads of a 126 KB PNG of 39 MP took a live server from 101 MB to
    1.2 GB; with 2 slots, 380 MB (bench/upload_rss.py). PNGs no longer come here (check_png_pixels);
    a WebP or GIF as large still does.
    Waits at most UPLOAD_DECODE_WAIT_SECONDS, then raises DecodersBusy.
    """
    slots = _decode_slots(settings.UPLOAD_MAX_CONCURRENT_DECODES)
    if not slots.acquire(timeout=settings.UPLOAD_DECODE_WAIT_SECONDS):
        raise DecodersBusy
    try:
        yield
    finally:
        slots.release()


def _check_animation(kind: ImageKind, path: Path, frame_pixels: int) -> None:
    """Refuse an animation past UPLOAD_MAX_FRAMES frames or UPLOAD_MAX_ANIMATION_PIXELS in all.

    A browser keeps each frame composed on the whole canvas, so an animation costs its viewers
    frames x width x height pixels, whatever its frames' own rectangles (a 69 KB GIF of 3,000
    one-pixel frames on a 39.6 MP screen is ~119 gigapixels). Frames are counted on the container
    (media.containers: GIF image blocks, APNG fcTL chunks, WebP ANMF chunks), stopping at the
    first frame past the limit: ~8 ms for those 3,000 GIF frames, nothing decoded.
    """
    max_frames = settings.UPLOAD_MAX_FRAMES
    max_total = settings.UPLOAD_MAX_ANIMATION_PIXELS
    allowed = min(max_frames, max_total // frame_pixels)
    frames = containers.frame_count(kind.pillow_format, path, stop_after=allowed)
    if frames <= allowed:
        return
    if frames > max_frames:
        raise reject(f"The animation has too many frames: at most {max_frames} are accepted.")
    raise reject(
        f"The animation is too large: at most {max_total / 1_000_000:g} megapixels in all its frames "
        f"(frames x width x height) are accepted; this one has at least {frames} frames of "
        f"{frame_pixels / 1_000_000:g} megapixels."
    )
