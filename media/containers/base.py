"""What every container walker shares: the error, the writer's type, copying a length of bytes."""

from collections.abc import Callable
from typing import IO

Write = Callable[[bytes], None]

COPY_SLICE = 1024 * 1024


class CorruptImage(Exception):
    """The container structure is broken where the walker must read or rewrite it."""


def copy_bytes(file: IO[bytes], length: int, write: Write) -> None:
    """Copy `length` bytes from the file's position, a slice at a time."""
    remaining = length
    while remaining > 0:
        chunk = file.read(min(remaining, COPY_SLICE))
        if not chunk:
            raise CorruptImage("ends inside a chunk")
        write(chunk)
        remaining -= len(chunk)


def read_exactly(file: IO[bytes], length: int) -> bytes:
    data = file.read(length)
    if len(data) < length:
        raise CorruptImage("ends inside a block")
    return data
