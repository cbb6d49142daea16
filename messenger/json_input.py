"""JSON from clients, read by one set of rules for REST bodies and WebSocket frames alike.

Python's json parses nesting until the interpreter's recursion limit; a document nested deeper
than MAX_DEPTH is refused here, before anything walks it: a REST body gets 400, a frame an
`invalid` error frame (docs/API.md, v1.1 "Errors and overload"). What no column can store --
a lone surrogate ("\\ud800" is valid JSON, and not UTF-8), a NUL character, an integer beyond 64
bits -- is refused by the field that reads it (DRF's CharField validators, the serializers'
max_value), which names the field; REST bodies and socket frames go through the same serializers.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from messenger.exceptions import Refused

MAX_DEPTH = 32


def _check_depth(value: Any) -> None:
    """Refuse documents nested deeper than MAX_DEPTH, walked without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise Refused("invalid", f"JSON nested deeper than {MAX_DEPTH} levels.")
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))


def loads(text: str | bytes) -> Any:
    """Parse client JSON, or raise Refused("invalid", why)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise Refused("invalid", "Not valid JSON.") from None
    try:
        _check_depth(value)
    except Refused as refused:
        if isinstance(value, dict):
            refused.client_id = value.get("client_id")
        raise
    return value


class StrictJSONParser(JSONParser):
    """DRF's JSON parser with the rules above (settings.REST_FRAMEWORK's DEFAULT_PARSER_CLASSES)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
        except UnicodeDecodeError:
            raise ParseError("The body is not valid UTF-8.") from None
        try:
            return loads(text)
        except Refused as refused:
            raise ParseError(f"JSON parse error - {refused.detail}") from None
