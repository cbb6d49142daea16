"""Image containers walked on their bytes: metadata kept by allowlist, and frames counted.

Nothing here decodes pixels or re-encodes an image: segments (JPEG), chunks (PNG, WebP) and blocks
(GIF) are copied byte for byte or left out, so the image that is served is the image that was sent,
minus what could say where it was taken or by what. Each format keeps only what it needs to be
displayed as sent; everything else goes, known or unknown:

    EXIF    rebuilt from scratch with Orientation alone: no GPS IFD (wherever its pointer sits),
            no IFD1 (the thumbnail, a JPEG that may carry its own EXIF), no Exif IFD (MakerNote,
            serial numbers, times), no Make/Model. Orientation stays because viewers rotate by it.
    JPEG    JFIF (its thumbnail emptied), ICC profile, Adobe (colour transform), the EXIF above and
            the frame and scan segments; not XMP, MPF, IPTC, comments, other APPn, or anything after
            the end of the first image.
    PNG     the chunks of the PNG 3 and APNG specifications that draw the image, eXIf rebuilt, text
            chunks with the specification's predefined keywords (Title, Comment…), nothing after IEND;
            not XMP or ImageMagick's raw profiles in text chunks, C2PA, or private chunks.
    WebP    bitstream, alpha, animation and ICC chunks, EXIF rebuilt; not XMP, unknown chunks, or
            bytes past the RIFF size.
    GIF     image, graphic-control and plain-text blocks, the looping (NETSCAPE2.0/ANIMEXTS1.0) and
            ICC application extensions; not XMP or other application extensions, comments, or
            anything after the trailer.

A structure broken where the walker must rewrite it raises CorruptImage (the upload is refused).
"""

import mmap
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Literal

Write = Callable[[bytes], None]

COPY_SLICE = 1024 * 1024


class CorruptImage(Exception):
    """The container structure is broken where the walker must read or rewrite it."""


# EXIF ------------------------------------------------------------------------------------

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


# JPEG ------------------------------------------------------------------------------------

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


# PNG -------------------------------------------------------------------------------------

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
                _copy(file, length + 4, write)
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
                pending = _read_exactly(file, length)
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


# WebP ------------------------------------------------------------------------------------

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
                _copy(file, length, write)
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


# GIF -------------------------------------------------------------------------------------

GIF_EXTENSION, GIF_IMAGE, GIF_TRAILER = 0x21, 0x2C, 0x3B
GRAPHIC_CONTROL, PLAIN_TEXT, APPLICATION, COMMENT = 0xF9, 0x01, 0xFF, 0xFE
# Looping (Netscape's and its twin) and an ICC profile; XMP ("XMP DataXMP") and the rest go.
GIF_KEPT_APPLICATIONS = {b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012"}


def write_clean_gif(path: Path, write: Write) -> None:
    """Copy a GIF block by block, keeping what draws it; nothing after the trailer."""
    _walk_gif(path, write, stop_after=None)


def gif_frame_count(path: Path, *, stop_after: int) -> int:
    """The image blocks (frames) of a GIF, counted up to `stop_after` + 1 without decoding any."""
    return _walk_gif(path, lambda data: None, stop_after=stop_after)


def _walk_gif(path: Path, write: Write, *, stop_after: int | None) -> int:
    """Write the kept blocks; return the number of frames (stopping early past `stop_after`).

    A GIF that ends at a block boundary without its trailer (browsers show those) gets one.
    """
    frames = 0
    with open(path, "rb") as file:
        header = file.read(13)  # signature, logical screen descriptor
        if len(header) < 13:
            raise CorruptImage("GIF header truncated")
        write(header)
        if header[10] & 0x80:
            _copy(file, 3 << ((header[10] & 0x07) + 1), write)
        while True:
            introducer = file.read(1)
            if not introducer or introducer[0] == GIF_TRAILER:
                write(b"\x3b")
                return frames
            if introducer[0] == GIF_IMAGE:
                descriptor = _read_exactly(file, 9)
                write(introducer + descriptor)
                if descriptor[8] & 0x80:
                    _copy(file, 3 << ((descriptor[8] & 0x07) + 1), write)
                write(_read_exactly(file, 1))  # LZW minimum code size
                _copy_sub_blocks(file, write)
                frames += 1
                if stop_after is not None and frames > stop_after:
                    return frames
            elif introducer[0] == GIF_EXTENSION:
                label = _read_exactly(file, 1)
                if label[0] in (GRAPHIC_CONTROL, PLAIN_TEXT):
                    write(introducer + label)
                    _copy_sub_blocks(file, write)
                elif label[0] == APPLICATION:
                    size = _read_exactly(file, 1)
                    identifier = _read_exactly(file, size[0])
                    if identifier in GIF_KEPT_APPLICATIONS:
                        write(introducer + label + size + identifier)
                        _copy_sub_blocks(file, write)
                    else:
                        _copy_sub_blocks(file, lambda data: None)
                else:  # comments, and labels no specification defines
                    _copy_sub_blocks(file, lambda data: None)
            else:
                raise CorruptImage(f"unknown GIF block {introducer!r}")


def _copy_sub_blocks(file: IO[bytes], write: Write) -> None:
    """Copy data sub-blocks up to and including the zero-length terminator."""
    while True:
        size = _read_exactly(file, 1)
        if size[0] == 0:
            write(size)
            return
        write(size + _read_exactly(file, size[0]))


def _read_exactly(file: IO[bytes], length: int) -> bytes:
    data = file.read(length)
    if len(data) < length:
        raise CorruptImage("ends inside a block")
    return data


# All formats -------------------------------------------------------------------------------


def _copy(file: IO[bytes], length: int, write: Write) -> None:
    remaining = length
    while remaining > 0:
        chunk = file.read(min(remaining, COPY_SLICE))
        if not chunk:
            raise CorruptImage("ends inside a chunk")
        write(chunk)
        remaining -= len(chunk)


CLEANERS: dict[str, Callable[[Path, Write], None]] = {
    "JPEG": write_clean_jpeg,
    "PNG": write_clean_png,
    "WEBP": write_clean_webp,
    "GIF": write_clean_gif,
}


def write_clean(pillow_format: str, path: Path, write: Write) -> None:
    """Write the image at `path` (of that Pillow format) with only the metadata it needs. Raises CorruptImage."""
    CLEANERS[pillow_format](path, write)


def frame_count(pillow_format: str, path: Path, *, stop_after: int) -> int:
    """How many frames the image shows (1 for a still), counted up to `stop_after` + 1, nothing decoded."""
    if pillow_format == "GIF":
        return gif_frame_count(path, stop_after=stop_after)
    if pillow_format == "PNG":
        return png_frame_count(path, stop_after=stop_after)
    if pillow_format == "WEBP":
        return webp_frame_count(path)
    return 1
