"""Errors raised once in the services, mapped to the contract's statuses at the edge.

Services raise Django's ValidationError and PermissionDenied; DRF already maps Http404 and
its own exceptions. The consumer maps the same exceptions to `error` frames.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def as_drf(error: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(error, "error_dict"):
        return exceptions.ValidationError(error.message_dict)
    return exceptions.ValidationError({"detail": " ".join(error.messages)})


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large."
    default_code = "too_large"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = as_drf(exc)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):
        # Raised while DRF parses the body; left alone, Django answers it with an HTML 400 page.
        limit_kb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
        exc = PayloadTooLarge(f"The request body is too large (at most {limit_kb} KB).")
    return drf_exception_handler(exc, context)
