"""Errors raised once, in the validators and services, mapped in one table at both edges.

Services raise Django's ValidationError, PermissionDenied and Http404 (never revealing a chat the
caller is not in); serializers raise DRF's ValidationError; a malformed frame raises Refused.
`ERRORS` says what each is to a REST client (the status) and to a socket (the `error` frame's
code): `exception_handler` is DRF's hook, `error_frame` the consumer's.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

RETRY_AFTER_SECONDS = 5
# A full disk, or the user's or the folder's quota (media.store tells them apart by these).
STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

logger = logging.getLogger(__name__)


class Refused(Exception):
    """Input the contract refuses, with the `error` frame's code (a frame that is not JSON, too large...)."""

    def __init__(self, code: str, detail: str, *, client_id: Any = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.client_id = client_id  # of a frame refused whole, when it could still be read


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large."
    default_code = "too_large"


class InsufficientStorage(exceptions.APIException):
    """The disk is full: 507 (RFC 4918 §11.5), not 503, because waiting a few seconds does not
    free a disk; an operator must. Everything but storing new bytes still works."""

    status_code = status.HTTP_507_INSUFFICIENT_STORAGE
    default_detail = "The server has no room to store this file right now."
    default_code = "storage_full"


class Unavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is unavailable right now; try again shortly."
    default_code = "unavailable"


class StorageUnavailable(Unavailable):
    """The object store (MEDIA_STORAGE=s3) did not answer or refused: 503 with Retry-After, and
    nothing was recorded (the write it interrupted rolls back)."""

    default_detail = "The file store cannot be reached right now; try again shortly."


# (exception class, HTTP status, `error` frame code); the first class that matches wins.
ERRORS: list[tuple[type[BaseException], int, str]] = [
    (DjangoValidationError, 400, "invalid"),
    (exceptions.ValidationError, 400, "invalid"),
    (exceptions.ParseError, 400, "invalid"),
    (PermissionDenied, 403, "forbidden"),
    (exceptions.PermissionDenied, 403, "forbidden"),
    (Http404, 404, "not_found"),
    (ObjectDoesNotExist, 404, "not_found"),
    (exceptions.NotFound, 404, "not_found"),
    (RequestDataTooBig, 413, "too_large"),
    (PayloadTooLarge, 413, "too_large"),
    (exceptions.Throttled, 429, "rate_limited"),
    (DatabaseError, 503, "unavailable"),
]


def classify(error: BaseException) -> tuple[int, str]:
    if isinstance(error, Refused):
        return 400, error.code
    for kind, status_code, code in ERRORS:
        if isinstance(error, kind):
            return status_code, code
    return 500, "unavailable"


def as_drf(error: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(error, "error_dict"):
        return exceptions.ValidationError(error.message_dict)
    return exceptions.ValidationError({"detail": " ".join(error.messages)})


def _flatten(detail: Any, field: str = "") -> list[str]:
    if isinstance(detail, dict):
        return [text for key, value in detail.items() for text in _flatten(value, key if key != "detail" else "")]
    if isinstance(detail, list):
        return [text for item in detail for text in _flatten(item, field)]
    return [f"{field}: {detail}" if field else str(detail)]


def error_frame(error: BaseException, client_id: Any = None) -> dict[str, Any]:
    """The socket's `error` frame for what a validator or service raised."""
    _, code = classify(error)
    if isinstance(error, Refused):
        detail = error.detail
    elif isinstance(error, DjangoValidationError):
        detail = " ".join(_flatten(as_drf(error).detail))
    elif isinstance(error, exceptions.APIException):
        detail = " ".join(_flatten(error.detail))
    elif code == "not_found":
        detail = "No chat or message matches the given query."
    elif code == "forbidden":
        detail = str(error) or "Not allowed."
    else:
        detail = Unavailable.default_detail
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    if client_id is None and isinstance(error, Refused):
        client_id = error.client_id
    if isinstance(client_id, str):
        frame["client_id"] = client_id
    return frame


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # Imported here: rest_framework.views reads the parser settings, and the parser imports Refused.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DjangoValidationError):
        exc = as_drf(exc)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):
        # Raised while DRF parses the body; left alone, Django answers it with an HTML 400 page.
        limit_kb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
        exc = PayloadTooLarge(f"The request body is too large (at most {limit_kb} KB).")
    elif isinstance(exc, DatabaseError):
        exc = Unavailable()
    elif isinstance(exc, OSError) and exc.errno in STORAGE_FULL_ERRNOS:
        logger.error("no room to store an upload: %s", exc)
        exc = InsufficientStorage()
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
