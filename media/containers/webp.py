"""WebP: RIFF chunks, the VP8X flags and sizes following what is kept."""

from pathlib import Path
from typing import IO

from media.containers.base import CorruptImage, Write, copy_bytes
from media.containers.exif import exif_allowlisted

VP8X_EXIF_FLAG = 0x08
VP8X_XMP_FLAG = 0x04
WEBP_KEPT_CHUNKS = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"}


def _webp_chunks(file: IO[bytes]) -> list[tuple[bytes, int, int]]:
    """(fourcc, data offset, data length) of the top-level chunks, within the RIFF size."""
    file.seek(0, 2)
    file_size = file.tell()
    file.seek(4)
    riff_end = min(file_size, 8 + int.from_bytes(file.read(4), "little"))
    file.seek(12)
    chunks: list[tuple[bytes, int, int]] = []
    while file.tell() + 8 <= riff_end:
        header = file.read(8)
        fourcc, length = header[:4], int.from_bytes(header[4:], "little")
        offset = file.tell()
        if offset + length > riff_end:
            raise CorruptImage("WebP chunk runs past the end")
        chunks.append((fourcc, offset, length))
        file.seek(length + (length & 1), 1)
    return chunks


def write_clean_webp(path: Path, write: Write) -> None:
    """Rewrite a WebP's RIFF chunks, keeping what draws it; VP8X flags and sizes follow."""
    with open(path, "rb") as file:
        chunks = _webp_chunks(file)
        replaced: dict[int, bytes] = {}
        order: list[int] = []  # indexes of the chunks kept, in file order
        for index, (fourcc, offset, length) in enumerate(chunks):
            if fourcc == b"EXIF":
                file.seek(offset)
                cleaned = exif_allowlisted(file.read(length), prefix=False)
                if cleaned is None:
                    continue
                replaced[index] = cleaned
            elif fourcc not in WEBP_KEPT_CHUNKS:
                continue
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
                copy_bytes(file, length, write)
            if size & 1:
                write(b"\x00")


def webp_canvas_size(path: Path) -> tuple[int, int]:
    """(width, height) from a WebP's first chunk (VP8X canvas, VP8L or VP8 frame header), read on the
    bytes: Pillow's WebP decoder allocates two canvases of that size as soon as it opens the file,
    ~320 MB at 40 MP and 2 GB at WebP's 16383 x 16383, before it checks the size."""
    with open(path, "rb") as file:
        chunks = _webp_chunks(file)
        if not chunks:
            raise CorruptImage("WebP without chunks")
        fourcc, offset, length = chunks[0]
        file.seek(offset)
        data = file.read(min(length, 30))
    if fourcc == b"VP8X" and len(data) >= 10:
        return 1 + int.from_bytes(data[4:7], "little"), 1 + int.from_bytes(data[7:10], "little")
    if fourcc == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:
        bits = int.from_bytes(data[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if fourcc == b"VP8 " and len(data) >= 10 and data[3:6] == b"\x9d\x01\x2a":
        return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(data[8:10], "little") & 0x3FFF
    raise CorruptImage("WebP without a readable size")


def webp_frame_count(path: Path) -> int:
    """The frames of an animated WebP (its ANMF chunks; a still one has 1)."""
    with open(path, "rb") as file:
        return max(1, sum(fourcc == b"ANMF" for fourcc, _, _ in _webp_chunks(file)))
