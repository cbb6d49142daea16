"""Judging an uploaded file by its bytes, and removing location data before it is stored.

Nothing here looks at the declared Content-Type or the file name. A file is accepted when
its first bytes carry the magic number of PNG, JPEG, GIF or WebP, Pillow (restricted to that
one format) parses its header with no more than settings.UPLOAD_MAX_PIXELS pixels, verify()
passes and the first frame really decodes. Refusals raise ValidationError({"file": [...]})
naming the reason; a file over settings.UPLOAD_MAX_BYTES raises FileTooLarge (413).
"""

import mmap
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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
                if kind is JPEG:
                    # Every byte of the scan is still entropy-decoded, but the DCT is scaled down 8x:
                    # a 40 MP photo takes ~2 MB instead of ~120 MB to check.
                    image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
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


class CorruptImage(Exception):
    """The container structure is broken where the cleaner must rewrite it."""


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
            raise CorruptImage("no SOI")
        write(b"\xff\xd8")
        pos = 2
        while True:
            if pos >= end or data[pos] != 0xFF:
                raise CorruptImage(f"expected a marker at {pos}")
            while pos < end and data[pos] == 0xFF:  # fill bytes
                pos += 1
            if pos >= end:
                raise CorruptImage("truncated marker")
            marker = data[pos]
            pos += 1
            if marker == EOI:
                write(b"\xff\xd9")
                return
            if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length
                write(bytes((0xFF, marker)))
                continue
            if pos + 2 > end:
                raise CorruptImage("truncated segment length")
            length = int.from_bytes(data[pos : pos + 2], "big")
            if length < 2 or pos + length > end:
                raise CorruptImage("truncated segment")
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
            raise CorruptImage("scan data runs past the end")
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


def _exif_without_gps(payload: bytes, *, prefix: bool = True) -> bytes | None:
    """EXIF without its GPS IFD: with the `Exif\\0\\0` prefix (JPEG) or bare TIFF (PNG, WebP).

    None when the EXIF cannot be parsed: what we cannot read could hide anything, so the whole
    block goes (orientation with it).
    """
    exif = Image.Exif()
    try:
        exif.load(payload)
        if ExifTags.IFD.GPSInfo not in exif:
            return payload
        del exif[ExifTags.IFD.GPSInfo]
        cleaned = exif.tobytes()
    except Exception:
        return None
    if prefix and len(cleaned) + 2 > 0xFFFF:
        return None
    return cleaned if prefix else cleaned.removeprefix(EXIF_PREFIX)


def write_clean(kind: ImageKind, path: Path, write: Callable[[bytes], None]) -> None:
    """Write the image at `path` without location data. Raises CorruptImage."""
    cleaners = {JPEG: write_clean_jpeg, PNG: write_clean_png, WEBP: write_clean_webp}
    cleaner = cleaners.get(kind)
    if cleaner is None:  # GIF carries no EXIF
        with open(path, "rb") as source:
            while chunk := source.read(COPY_SLICE):
                write(chunk)
        return
    cleaner(path, write)


# PNG: eXIf holds EXIF; XMP and ImageMagick's raw profiles travel in text chunks.
PNG_LOCATION_TEXT_KEYWORDS = {
    b"XML:com.adobe.xmp",
    b"Raw profile type exif",
    b"Raw profile type APP1",
    b"Raw profile type xmp",
    b"Raw profile type iptc",
}


def write_clean_png(path: Path, write: Callable[[bytes], None]) -> None:
    """Copy a PNG chunk by chunk: eXIf loses its GPS IFD, XMP/EXIF text chunks go, nothing after IEND."""
    with open(path, "rb") as file:
        write(file.read(8))
        while True:
            header = file.read(8)
            if len(header) < 8:
                raise CorruptImage("PNG ends before IEND")
            length = int.from_bytes(header[:4], "big")
            kind = header[4:]
            if kind == b"eXIf":
                data = file.read(length)
                file.read(4)  # CRC of the original data
                cleaned = _exif_without_gps(data, prefix=False)
                if cleaned is not None:
                    write(_png_chunk(kind, cleaned))
            elif kind in (b"tEXt", b"zTXt", b"iTXt") and _png_keyword(file, length) in PNG_LOCATION_TEXT_KEYWORDS:
                file.seek(length + 4, 1)
            else:
                write(header)
                _copy(file, length + 4, write)
            if kind == b"IEND":
                return


def _png_keyword(file: IO[bytes], length: int) -> bytes:
    start = file.tell()
    keyword = file.read(min(length, 80)).split(b"\x00", 1)[0]
    file.seek(start)
    return keyword


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


VP8X_EXIF_FLAG = 0x08
VP8X_XMP_FLAG = 0x04


def write_clean_webp(path: Path, write: Callable[[bytes], None]) -> None:
    """Rewrite a WebP's RIFF chunks: EXIF loses its GPS IFD, XMP goes, VP8X flags and sizes follow."""
    with open(path, "rb") as file:
        file.seek(0, 2)
        file_size = file.tell()
        file.seek(12)
        chunks: list[tuple[bytes, int, int]] = []  # (fourcc, data offset, data length)
        while file.tell() + 8 <= file_size:
            header = file.read(8)
            fourcc, length = header[:4], int.from_bytes(header[4:], "little")
            offset = file.tell()
            if offset + length > file_size:
                raise CorruptImage("WebP chunk runs past the end")
            chunks.append((fourcc, offset, length))
            file.seek(length + (length & 1), 1)
        replaced: dict[int, bytes] = {}
        order: list[int] = []  # indexes of the chunks kept, in file order
        for index, (fourcc, offset, length) in enumerate(chunks):
            if fourcc == b"XMP ":
                continue
            if fourcc == b"EXIF":
                file.seek(offset)
                cleaned = _exif_without_gps(file.read(length), prefix=False)
                if cleaned is None:
                    continue
                replaced[index] = cleaned
            order.append(index)
        has_exif = any(chunks[index][0] == b"EXIF" for index in order)
        for index in order:
            fourcc, offset, length = chunks[index]
            if fourcc == b"VP8X" and length >= 1:
                file.seek(offset)
                data = bytearray(file.read(length))
                data[0] &= ~VP8X_XMP_FLAG & 0xFF
                if not has_exif:
                    data[0] &= ~VP8X_EXIF_FLAG & 0xFF
                replaced[index] = bytes(data)
        sizes = {index: len(replaced[index]) if index in replaced else chunks[index][2] for index in order}
        riff_size = 4 + sum(8 + size + (size & 1) for size in sizes.values())
        write(b"RIFF" + riff_size.to_bytes(4, "little") + b"WEBP")
        for index in order:
            fourcc, offset, length = chunks[index]
            size = sizes[index]
            write(fourcc + size.to_bytes(4, "little"))
            if index in replaced:
                write(replaced[index])
            else:
                file.seek(offset)
                _copy(file, length, write)
            if size & 1:
                write(b"\x00")


def _copy(file: IO[bytes], length: int, write: Callable[[bytes], None]) -> None:
    remaining = length
    while remaining > 0:
        chunk = file.read(min(remaining, COPY_SLICE))
        if not chunk:
            raise CorruptImage("ends inside a chunk")
        write(chunk)
        remaining -= len(chunk)
