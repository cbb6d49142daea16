"""drf-spectacular hooks: the schema shows the contract's paths as API.md writes them."""

from typing import Any


def contract_paths(endpoints: list[tuple[str, str, str, Any]], **kwargs: Any) -> list[tuple[str, str, str, Any]]:
    """Drop the trailing slash the routers' optional "/?" renders as: the contract's paths have none
    (both forms are served)."""
    return [(path.rstrip("/") if path != "/" else path, regex, method, view) for path, regex, method, view in endpoints]


UNAVAILABLE = {
    "description": (
        "The database could not answer in time (messenger.exceptions), or the server is saturated (no request "
        "thread free within HTTP_QUEUE_SECONDS, messenger.http_threads): try again after Retry-After seconds."
    ),
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again"}},
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
        }
    },
}


def unavailable_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Every operation may answer 503: a database failure is mapped to it in one place (the exception
    table), whatever the endpoint, and a request that waited too long for a thread gets it too."""
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("503", UNAVAILABLE)
    return result
