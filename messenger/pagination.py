"""Pages in the contract's shape: {"results": [...], "next": <url or null>}."""

from typing import Any

from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response


class PagePagination(PageNumberPagination):
    """Numbered pages, for search results ranked by relevance."""

    page_size = 20
    page_size_query_param = "limit"
    max_page_size = 100

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return _page_schema(schema)


class NewestFirstCursorPagination(CursorPagination):
    """Keyset pages newest first: stable while rows are added, and never an OFFSET scan."""

    page_size = 30
    page_size_query_param = "limit"
    max_page_size = 100
    ordering = "-id"

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return _page_schema(schema)


class ChatCursorPagination(NewestFirstCursorPagination):
    ordering = ("-last_activity_at", "-id")  # type: ignore[assignment]


class PinCursorPagination(NewestFirstCursorPagination):
    ordering = ("-pinned_at", "-id")  # type: ignore[assignment]


def _page_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["results", "next"],
        "properties": {
            "results": schema,
            "next": {"type": "string", "nullable": True, "format": "uri"},
        },
    }
