"""EXIF rebuilt from scratch with the Orientation alone."""

from typing import Literal

EXIF_PREFIX = b"Exif\x00\x00"
ORIENTATION_TAG = 0x0112
SHORT = 3


def exif_allowlisted(payload: bytes, *, prefix: bool) -> bytes | None:
    """A new EXIF block holding only the Orientation of `payload`, or None when it has none.

    `payload` is EXIF with the `Exif\\0\\0` prefix (JPEG) or bare TIFF (PNG eXIf, WebP EXIF);
    the result has the same form. EXIF that cannot be read yields None: nothing is kept of it.
    """
    orientation = _exif_orientation(payload.removeprefix(EXIF_PREFIX) if prefix else payload)
    if orientation is None:
        return None
    # Big-endian TIFF: header, IFD0 at offset 8 with one entry (a SHORT fits in the entry), no next IFD.
    tiff = (
        b"MM\x00\x2a\x00\x00\x00\x08"
        + (1).to_bytes(2, "big")
        + ORIENTATION_TAG.to_bytes(2, "big")
        + SHORT.to_bytes(2, "big")
        + (1).to_bytes(4, "big")
        + orientation.to_bytes(2, "big")
        + b"\x00\x00"
        + b"\x00\x00\x00\x00"
    )
    return EXIF_PREFIX + tiff if prefix else tiff


def _exif_orientation(tiff: bytes) -> int | None:
    """Orientation (1..8) from IFD0 of a TIFF structure, or None."""
    order: Literal["little", "big"]
    if tiff[:4] == b"II\x2a\x00":
        order = "little"
    elif tiff[:4] == b"MM\x00\x2a":
        order = "big"
    else:
        return None
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return None
    count = int.from_bytes(tiff[ifd : ifd + 2], order)
    for index in range(count):
        entry = tiff[ifd + 2 + 12 * index : ifd + 14 + 12 * index]
        if len(entry) < 12:
            return None
        tag, kind, number = (
            int.from_bytes(entry[0:2], order),
            int.from_bytes(entry[2:4], order),
            int.from_bytes(entry[4:8], order),
        )
        if tag == ORIENTATION_TAG and kind == SHORT and number == 1:
            value = int.from_bytes(entry[8:10], order)
            return value if 1 <= value <= 8 else None
    return None
