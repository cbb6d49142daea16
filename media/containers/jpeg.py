"""JPEG: segment by segment, the entropy-coded data byte for byte."""

import mmap
from pathlib import Path

from media.containers.base import COPY_SLICE, CorruptImage, Write
from media.containers.exif import EXIF_PREFIX, exif_allowlisted

APP0, APP1, APP2, APP14, SOS, EOI, COM = 0xE0, 0xE1, 0xE2, 0xEE, 0xDA, 0xD9, 0xFE
JFIF_PREFIX = b"JFIF\x00"
JFIF_HEADER_LENGTH = 14  # identifier, version, units, densities; then the thumbnail's size and pixels
ICC_PREFIX = b"ICC_PROFILE\x00"
ADOBE_PREFIX = b"Adobe"


def write_clean_jpeg(path: Path, write: Write) -> None:
    """Copy a JPEG segment by segment, keeping what draws it; the entropy-coded data byte for byte."""
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
            kept = _jpeg_segment_kept(marker, payload)
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


def _jpeg_segment_kept(marker: int, payload: bytes) -> bytes | None:
    """The segment's payload to keep (possibly rewritten), or None to drop it."""
    if marker == APP0:
        if payload.startswith(JFIF_PREFIX) and len(payload) >= JFIF_HEADER_LENGTH:
            return payload[: JFIF_HEADER_LENGTH - 2] + b"\x00\x00"  # no thumbnail
        return None  # JFXX (a thumbnail), anything else
    if marker == APP1:
        return exif_allowlisted(payload, prefix=True) if payload.startswith(EXIF_PREFIX) else None
    if marker == APP2:
        return payload if payload.startswith(ICC_PREFIX) else None
    if marker == APP14:
        return payload if payload.startswith(ADOBE_PREFIX) else None
    if 0xE0 <= marker <= 0xEF or marker == COM:
        return None
    return payload  # tables, frame and scan headers, restart interval…
