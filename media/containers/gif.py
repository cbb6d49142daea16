"""GIF: block by block, frames counted on the way."""

from pathlib import Path
from typing import IO

from media.containers.base import CorruptImage, Write, copy_bytes, read_exactly

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
            copy_bytes(file, 3 << ((header[10] & 0x07) + 1), write)
        while True:
            introducer = file.read(1)
            if not introducer or introducer[0] == GIF_TRAILER:
                write(b"\x3b")
                return frames
            if introducer[0] == GIF_IMAGE:
                descriptor = read_exactly(file, 9)
                write(introducer + descriptor)
                if descriptor[8] & 0x80:
                    copy_bytes(file, 3 << ((descriptor[8] & 0x07) + 1), write)
                write(read_exactly(file, 1))  # LZW minimum code size
                _copy_sub_blocks(file, write)
                frames += 1
                if stop_after is not None and frames > stop_after:
                    return frames
            elif introducer[0] == GIF_EXTENSION:
                label = read_exactly(file, 1)
                if label[0] in (GRAPHIC_CONTROL, PLAIN_TEXT):
                    write(introducer + label)
                    _copy_sub_blocks(file, write)
                elif label[0] == APPLICATION:
                    size = read_exactly(file, 1)
                    identifier = read_exactly(file, size[0])
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
        size = read_exactly(file, 1)
        if size[0] == 0:
            write(size)
            return
        write(size + read_exactly(file, size[0]))
