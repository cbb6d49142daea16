"""Receiving an upload: spooled to disk chunk by chunk, refused as soon as it is too large."""

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest
from rest_framework import status
from rest_framework.exceptions import APIException

from media.validation import too_large_message

# Multipart framing around the file itself: boundaries, part headers, a few small fields.
ENVELOPE_ALLOWANCE = 64 * 1024


class UploadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"

    def __init__(self, limit: int) -> None:
        super().__init__({"file": [too_large_message(limit)]})


class BoundedUploadHandler(TemporaryFileUploadHandler):
    """Writes every uploaded file to a temporary file (never to memory) and stops at the limit.

    A Content-Length above settings.UPLOAD_MAX_BYTES (plus the multipart envelope) is refused
    before a byte is parsed; otherwise the running total of file bytes is checked on every
    chunk, and the partial temporary file is deleted when it goes over. Django's parser closes
    (and so deletes) the files it had completed when this raises.
    """

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit: int = settings.UPLOAD_MAX_BYTES
        self.received = 0

    def handle_raw_input(
        self, input_data: Any, META: dict[str, Any], content_length: int, boundary: str, encoding: str | None = None
    ) -> None:
        if content_length > self.limit + ENVELOPE_ALLOWANCE:
            raise UploadTooLarge(self.limit)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.discard()
            raise UploadTooLarge(self.limit)
        try:
            return super().receive_data_chunk(raw_data, start)
        except OSError:
            # A full disk under FILE_UPLOAD_TEMP_DIR: drop the partial file; the OSError is a 507.
            self.discard()
            raise

    def upload_interrupted(self) -> None:
        self.discard()

    def discard(self) -> None:
        """Close the file being written; a TemporaryUploadedFile deletes itself on close."""
        file = getattr(self, "file", None)
        if file is not None:
            file.close()
