"""Judging an uploaded file by its bytes, and removing location data before it is stored.

Nothing here looks at the declared Content-Type or the file name. A file is accepted when
its first bytes carry the magic number of PNG, JPEG, GIF or WebP, Pillow (restricted to that
one format) parses its header with no more than settings.UPLOAD_MAX_PIXELS pixels, verify()
passes and the first frame really decodes. Refusals raise ValidationError({"file": [...]})
naming the reason; a file over settings.UPLOAD_MAX_BYTES raises FileTooLarge (413).
"""

import mmap
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from PIL import ExifTags, Image


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


class FileTooLarge(Exception):
    """The upload is larger than settings.UPLOAD_MAX_BYTES (answered with 413)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(too_large_message(limit))


def too_large_message(limit: int) -> str:
    megabyte = 1024 * 1024
    size = f"{limit // megabyte} MB" if limit % megabyte == 0 else f"{limit} bytes"
    return f"The file is too large: at most {size} is accepted."


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


def inspect_image(path: Path, *, size: int) -> ImageInfo:
    """Accept or refuse the file at `path` (`size` bytes long) by its content."""
    limit = settings.UPLOAD_MAX_BYTES
    if size > limit:
        raise FileTooLarge(limit)
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
        # Pillow warns past Image.MAX_IMAGE_PIXELS and raises past twice that (see MediaConfig.ready);
        # the warning is an error here, and the explicit check below applies the setting exactly,
        # before anything is decoded.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=[kind.pillow_format]) as image:
                width, height = image.size
                if width < 1 or height < 1:
                    raise reject(f"The {kind.name} image has no pixels.")
                if width * height > max_pixels:
                    raise too_many_pixels
                image.verify()
            # verify() leaves the image unusable: open again and decode the first frame for real.
            with Image.open(path, formats=[kind.pillow_format]) as image:
                image.load()
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many_pixels from None
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, EOFError, struct.error…
        raise reject(f"The file is not a valid {kind.name} image: it is truncated or corrupt.") from error
    return ImageInfo(kind=kind, width=width, height=height)


# Location data ------------------------------------------------------------------------

XMP_PREFIX = b"http://ns.adobe.com/xap/1.0/\x00"
EXTENDED_XMP_PREFIX = b"http://ns.adobe.com/xmp/extension/\x00"
MPF_PREFIX = b"MPF\x00"
EXIF_PREFIX = b"Exif\x00\x00"
APP1, APP2, APP13, SOS, EOI = 0xE1, 0xE2, 0xED, 0xDA, 0xD9
COPY_SLICE = 1024 * 1024


class CorruptJpeg(Exception):
    pass


def write_clean_jpeg(path: Path, write: Callable[[bytes], None]) -> None:
    """Write the JPEG at `path` without location data, segment by segment, never decoding it.

    The pixels (entropy-coded data) are copied byte for byte, so nothing is recompressed.
    Removed: the GPS IFD from EXIF (orientation and the rest of EXIF stay), XMP (which may
    repeat GPS), IPTC/Photoshop (APP13: place names), and everything after the end of the
    first image — phones append preview images there with their own EXIF (MPF, whose
    APP2 index goes too), and polyglots hide payloads there.
    """
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        end = len(data)
        if data[:2] != b"\xff\xd8":
            raise CorruptJpeg("no SOI")
        write(b"\xff\xd8")
        pos = 2
        while True:
            if pos >= end or data[pos] != 0xFF:
                raise CorruptJpeg(f"expected a marker at {pos}")
            while pos < end and data[pos] == 0xFF:  # fill bytes
                pos += 1
            if pos >= end:
                raise CorruptJpeg("truncated marker")
            marker = data[pos]
            pos += 1
            if marker == EOI:
                write(b"\xff\xd9")
                return
            if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length
                write(bytes((0xFF, marker)))
                continue
            if pos + 2 > end:
                raise CorruptJpeg("truncated segment length")
            length = int.from_bytes(data[pos : pos + 2], "big")
            if length < 2 or pos + length > end:
                raise CorruptJpeg("truncated segment")
            payload = data[pos + 2 : pos + length]
            pos += length
            kept = _clean_segment(marker, payload)
            if kept is not None:
                write(bytes((0xFF, marker)) + (len(kept) + 2).to_bytes(2, "big") + kept)
            if marker == SOS:
                scan_end = _next_marker(data, pos)
                for start in range(pos, scan_end, COPY_SLICE):
                    write(data[start : min(start + COPY_SLICE, scan_end)])
                pos = scan_end


def _next_marker(data: mmap.mmap, pos: int) -> int:
    """The offset of the first real marker after entropy-coded data starting at `pos`."""
    while True:
        found = data.find(b"\xff", pos)
        if found < 0 or found + 1 >= len(data):
            raise CorruptJpeg("scan data runs past the end")
        following = data[found + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos = found + 1 if following == 0xFF else found + 2  # stuffed byte, restart marker or fill
            continue
        return found


def _clean_segment(marker: int, payload: bytes) -> bytes | None:
    """The segment's payload to keep (possibly rewritten), or None to drop it."""
    if marker == APP1 and payload.startswith(EXIF_PREFIX):
        return _exif_without_gps(payload)
    if marker == APP1 and payload.startswith((XMP_PREFIX, EXTENDED_XMP_PREFIX)):
        return None
    if marker == APP2 and payload.startswith(MPF_PREFIX):
        return None
    if marker == APP13:
        return None
    return payload


def _exif_without_gps(payload: bytes) -> bytes | None:
    exif = Image.Exif()
    try:
        exif.load(payload)
        if ExifTags.IFD.GPSInfo not in exif:
            return payload
        del exif[ExifTags.IFD.GPSInfo]
        cleaned = exif.tobytes()
    except Exception:
        # EXIF we cannot parse could hide anything: drop the whole segment (orientation with it).
        return None
    if len(cleaned) + 2 > 0xFFFF:
        return None
    return cleaned
