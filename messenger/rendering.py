"""Datetimes as the REST framework renders them, for the serializers' hand-written outputs.

The output serializers of the hot paths (users, messages, chats, attachments) build their dicts
directly instead of walking DRF's fields: DRF spends ~10 µs per field, and the chat list renders
over a thousand. Their fields stay declared for validation of the shape and for the OpenAPI
schema, and tests check each hand-written output against DRF's generic rendering.
"""

from datetime import datetime, tzinfo

from django.utils import timezone
from rest_framework import serializers

_DATETIME = serializers.DateTimeField()


def datetime_text(value: datetime | None, zone: tzinfo | None = None) -> str | None:
    """ISO 8601 in the current time zone, "Z" for UTC: exactly DateTimeField's output.

    Aware datetimes (every one the models hold) take a short path; DateTimeField's own takes
    about 40 µs here, through its time zone lookups, and a chat page renders ~200 of them. Even
    `timezone.get_current_timezone()` costs ~17 µs (an asgiref Local lookup): a caller rendering
    many values passes `zone` (`current_zone()`, looked up once) -- a 1,000-member chat renders
    1,000 `last_seen`s, a third of a rename's answer in bench/ before.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        return _DATETIME.to_representation(value)
    text = value.astimezone(zone or timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def current_zone() -> tzinfo:
    """The current time zone, for `datetime_text(..., zone)` over many values."""
    return timezone.get_current_timezone()
