"""Receiving an upload: spooled to disk chunk by chunk (to memory if that disk is full), refused when too large."""

import io
from contextlib import suppress
from typing import Any

from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest
from rest_framework import status
from rest_framework.exceptions import APIException

from media.store import is_storage_full
from media.validation import largest_upload_bytes, too_large_message

# Multipart framing around the file itself: boundaries, part headers, a few small fields.
ENVELOPE_ALLOWANCE = 64 * 1024


class UploadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"

    def __init__(self, message: str) -> None:
        super().__init__({"file": [message]})


class UploadQuotaExceeded(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "quota_exceeded"


class BoundedUploadHandler(TemporaryFileUploadHandler):
    """Writes every uploaded file to a temporary file and stops at the limit.

    A Content-Length above the largest upload of any kind (settings.FILE_MAX_BYTES or
    UPLOAD_MAX_BYTES, plus the multipart envelope) is refused
    before a byte is parsed; otherwise the running total of file bytes is checked on every
    chunk, and the partial temporary file is deleted when it goes over. Django's parser closes
    (and so deletes) the files it had completed when this raises.

    When FILE_UPLOAD_TEMP_DIR's disk is full, the file is received into memory instead (at most
    the largest upload a request): bytes the store already holds need no disk at all, and those
    it does not hold are refused by the store with 507 (media.store).
    """

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        # The kind's own limit (an image's is lower by default) is checked once the bytes are in.
        self.limit: int = largest_upload_bytes()
        self.received = 0
        self.in_memory: io.BytesIO | None = None

    def handle_raw_input(
        self, input_data: Any, META: dict[str, Any], content_length: int, boundary: str, encoding: str | None = None
    ) -> None:
        if content_length > self.limit + ENVELOPE_ALLOWANCE:
            raise UploadTooLarge(too_large_message(self.limit))

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        self.in_memory = None
        try:
            super().new_file(*args, **kwargs)
        except OSError as error:
            if not is_storage_full(error):
                raise
            self.__dict__.pop("file", None)  # the previous field's file, complete: not ours to discard
            self.in_memory = io.BytesIO()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.discard()
            raise UploadTooLarge(too_large_message(self.limit))
        if self.in_memory is None:
            try:
                return super().receive_data_chunk(raw_data, start)
            except OSError as error:
                if not is_storage_full(error):
                    self.discard()
                    raise
                self._to_memory(received_before=start, error=error)
        assert self.in_memory is not None
        self.in_memory.write(raw_data)
        return None

    def _to_memory(self, *, received_before: int, error: OSError) -> None:
        """Move the earlier chunks (the file's first `received_before` bytes) into memory, and
        remove the file. If they cannot be read back whole (a buffer that never reached the
        disk), the upload fails with the disk's error."""
        try:
            self.file.seek(0)
            earlier = self.file.read(received_before)
        except OSError:
            earlier = b""
        if len(earlier) != received_before:
            self.discard()
            raise error
        self.in_memory = io.BytesIO(earlier)
        self.in_memory.seek(0, io.SEEK_END)
        self.discard()
        del self.file

    def file_complete(self, file_size: int) -> Any:
        if self.in_memory is None:
            return super().file_complete(file_size)
        self.in_memory.seek(0)
        return InMemoryUploadedFile(
            file=self.in_memory,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )

    def upload_interrupted(self) -> None:
        self.discard()

    def discard(self) -> None:
        """Close the file being written; a TemporaryUploadedFile deletes itself on close."""
        file = getattr(self, "file", None)
        if file is not None:
            with suppress(OSError):  # a full disk's unwritten buffer
                file.close()
