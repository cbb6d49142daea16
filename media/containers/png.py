"""PNG: chunk by chunk; APNG frames counted; the image data inflated scanline by scanline."""

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from media.containers.base import CorruptImage, Write, copy_bytes, read_exactly
from media.containers.exif import exif_allowlisted

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG 3 (2025) and APNG: the chunks that draw the image as sent.
PNG_KEPT_CHUNKS = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB", b"cICP",
    b"mDCV", b"cLLI", b"mDCv", b"cLLi", b"bKGD", b"hIST", b"pHYs", b"sPLT", b"tIME", b"acTL", b"fcTL", b"fdAT",
}  # fmt: skip
PNG_TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt"}
# The PNG specification's predefined keywords; others (XML:com.adobe.xmp, "Raw profile type exif"…) go.
PNG_KEPT_TEXT_KEYWORDS = {
    b"Title", b"Author", b"Description", b"Copyright", b"Creation Time", b"Software", b"Disclaimer",
    b"Warning", b"Source", b"Comment",
}  # fmt: skip


def write_clean_png(path: Path, write: Write) -> None:
    """Copy a PNG chunk by chunk, keeping what draws it; nothing after IEND."""
    with open(path, "rb") as file:
        write(file.read(8))
        for kind, length in _png_chunks(file):
            if kind == b"eXIf":
                cleaned = exif_allowlisted(file.read(length), prefix=False)
                file.seek(4, 1)  # the CRC of the original data
                if cleaned is not None:
                    write(_png_chunk(kind, cleaned))
            elif kind in PNG_KEPT_CHUNKS or (
                kind in PNG_TEXT_CHUNKS and _png_keyword(file, length) in PNG_KEPT_TEXT_KEYWORDS
            ):
                write(length.to_bytes(4, "big") + kind)
                copy_bytes(file, length + 4, write)
            else:
                file.seek(length + 4, 1)


def png_frame_count(path: Path, *, stop_after: int) -> int:
    """The frames of an APNG (its fcTL chunks; a still PNG has 1), counted up to `stop_after` + 1."""
    frames = 0
    with open(path, "rb") as file:
        file.seek(8)
        for kind, length in _png_chunks(file):
            frames += kind == b"fcTL"
            if frames > stop_after:
                break
            file.seek(length + 4, 1)
    return max(frames, 1)


def _png_chunks(file: IO[bytes]) -> Iterator[tuple[bytes, int]]:
    """(type, length) of each chunk up to IEND, with the file at its data; the caller moves past data and CRC."""
    while True:
        header = file.read(8)
        if len(header) < 8:
            raise CorruptImage("PNG ends before IEND")
        kind = header[4:]
        yield kind, int.from_bytes(header[:4], "big")
        if kind == b"IEND":
            return


def _png_keyword(file: IO[bytes], length: int) -> bytes:
    start = file.tell()
    keyword = file.read(min(length, 80)).split(b"\x00", 1)[0]
    file.seek(start)
    return keyword


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type: grey, RGB, palette, grey + alpha, RGBA
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
INFLATE_SLICE = 1024 * 1024


def png_scanlines(path: Path) -> list[tuple[int, int]]:
    """(rows, bytes per filtered scanline, its filter byte included) of each pass of the PNG's image
    data, in order: one pass, or Adam7's seven for an interlaced image (empty passes left out)."""
    with open(path, "rb") as file:
        file.seek(8)
        header = file.read(8 + 13)
    if len(header) < 21 or header[4:8] != b"IHDR":
        raise CorruptImage("PNG without IHDR")
    width, height = int.from_bytes(header[8:12], "big"), int.from_bytes(header[12:16], "big")
    bit_depth, colour_type, interlace = header[16], header[17], header[20]
    if colour_type not in PNG_CHANNELS:
        raise CorruptImage(f"PNG colour type {colour_type}")
    bits_per_pixel = PNG_CHANNELS[colour_type] * bit_depth
    passes = []
    for x0, y0, dx, dy in ADAM7 if interlace else ((0, 0, 1, 1),):
        columns = (width - x0 + dx - 1) // dx if width > x0 else 0
        rows = (height - y0 + dy - 1) // dy if height > y0 else 0
        if columns and rows:
            passes.append((rows, 1 + (columns * bits_per_pixel + 7) // 8))
    return passes


def check_png_pixels(path: Path) -> None:
    """Inflate the PNG's image data as a decoder does, holding ~1 MB instead of the decoded frame.

    Checks what decoding can find wrong: the zlib stream, enough data for every scanline, and a
    valid filter type (0-4) at the start of each (read a pass at a time with a stride, in C); the
    unfiltering itself cannot fail. Data past the last scanline is ignored, as decoders do.
    Raises CorruptImage. A 39 MP PNG holds ~1 MB here where Image.load() holds ~160 MB.
    """
    passes = png_scanlines(path)
    next_filter = 0  # offset in the inflated data of the next scanline's filter byte
    inflated = 0  # bytes inflated before `piece`
    inflater = zlib.decompressobj()
    try:
        with open(path, "rb") as file:
            file.seek(8)
            for kind, length in _png_chunks(file):
                if kind != b"IDAT":
                    file.seek(length + 4, 1)
                    continue
                pending = read_exactly(file, length)
                file.seek(4, 1)
                while pending:
                    piece = inflater.decompress(pending, INFLATE_SLICE)
                    pending = inflater.unconsumed_tail
                    end = inflated + len(piece)
                    while passes and next_filter < end:
                        rows, stride = passes[0]
                        here = min(rows, (end - 1 - next_filter) // stride + 1)  # filter bytes in this piece
                        first = next_filter - inflated
                        if max(piece[first : first + (here - 1) * stride + 1 : stride]) > 4:
                            raise CorruptImage("PNG scanline with an unknown filter type")
                        next_filter += here * stride
                        passes[0] = (rows - here, stride)
                        if rows == here:
                            passes.pop(0)
                    if not passes and end >= next_filter:
                        return  # every scanline is there, whole
                    inflated = end
                    if inflater.eof or not piece:
                        break
    except zlib.error as error:
        raise CorruptImage(f"PNG image data: {error}") from error
    raise CorruptImage("PNG image data ends before the last scanline")
