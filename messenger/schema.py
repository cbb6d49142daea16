"""drf-spectacular hooks: the schema shows the contract's paths as docs/API.md writes them, and every
status an operation can answer, errors included, with the errors' JSON shapes.

Errors are mapped in one table (messenger.exceptions) and by one middleware (messenger.api_errors),
whatever the endpoint, so the statuses they give are documented here once, from what each view is
(authenticated or not, with a body, path ids, a page cursor, a throttle) rather than view by view:

    400 ValidationError  a body, a query or a write that the serializers or services refuse; bad JSON
    401 Error            no, invalid or expired token (and wrong credentials where a view says so)
    403 Error            a member without the right role (writes to a chat or a message)
    404 Error            an id in the path the caller may not see; a bad page cursor
    413 ValidationError  a body over DATA_UPLOAD_MAX_MEMORY_SIZE (an upload: over UPLOAD_MAX_BYTES)
    415 Error            a body in a media type the view does not parse
    429 Error            throttled, with Retry-After
    500 Error            {"detail": "Server error."}: a bug, never an HTML page
    503 Error            the database could not answer, with Retry-After

A view adds statuses of its own with `error_statuses` (login and refresh: 401 for bad credentials).
"""

from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.openapi import AutoSchema
from rest_framework.permissions import AllowAny


def contract_paths(endpoints: list[tuple[str, str, str, Any]], **kwargs: Any) -> list[tuple[str, str, str, Any]]:
    """Drop the trailing slash the routers' optional "/?" renders as: the contract's paths have none
    (both forms are served)."""
    return [(path.rstrip("/") if path != "/" else path, regex, method, view) for path, regex, method, view in endpoints]


class SessionJWTScheme(SimpleJWTScheme):
    """The bearer JWT, as SimpleJWT's (accounts.sessions.SessionJWTAuthentication only adds a check)."""

    target_class = "accounts.sessions.SessionJWTAuthentication"


ERROR_SCHEMA = {
    "type": "object",
    "description": 'An error: `{"detail": "..."}` (DRF\'s shape; a token error adds `code` and `messages`).',
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail"],
}
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": (
        'Refused input, DRF\'s shape: `{"field": ["message", ...]}` per field (nested for nested fields), '
        '`{"non_field_errors": [...]}`, or `{"detail": "..."}` (malformed JSON).'
    ),
    "properties": {
        "detail": {"type": "string"},
        "non_field_errors": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": {},
}
COMPONENTS = {"Error": ERROR_SCHEMA, "ValidationError": VALIDATION_ERROR_SCHEMA}

RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again"}}


def _response(description: str, component: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
    }
    if retry_after:
        response["headers"] = RETRY_AFTER
    return response


ERROR_RESPONSES: dict[str, dict[str, Any]] = {
    "400": _response("Bad input: the serializer's field errors, or malformed JSON", "ValidationError"),
    "401": _response("No, invalid or expired token", "Error"),
    "403": _response("A member without the right role", "Error"),
    "404": _response("No such object, or one the caller may not see (never revealed); a bad page", "Error"),
    "413": _response("The request body is too large", "ValidationError"),
    "415": _response("A body in a media type this endpoint does not read", "Error"),
    "429": _response("Rate limited: try again after Retry-After seconds", "Error", retry_after=True),
    "500": _response('A server error: {"detail": "Server error."}', "Error"),
    "503": _response(
        "The database could not answer in time (messenger.exceptions), or the server is saturated (no request "
        "thread free within HTTP_QUEUE_SECONDS, messenger.http_threads): try again after Retry-After seconds",
        "Error",
        retry_after=True,
    ),
}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class ContractAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, with the error statuses each operation can answer."""

    def error_statuses(self, operation: dict[str, Any]) -> set[int]:
        view = self.view
        authenticated = not all(isinstance(permission, AllowAny) for permission in view.get_permissions())
        query = {p["name"] for p in operation.get("parameters", ()) if p.get("in") == "query"}
        in_path = any(p.get("in") == "path" for p in operation.get("parameters", ()))
        statuses = {500, 503, *getattr(view, "error_statuses", ())}
        if authenticated:
            statuses.add(401)
            if in_path and self.method in WRITES:
                statuses.add(403)
        if in_path or {"cursor", "page"} & query:
            statuses.add(404)
        if query or self.method in WRITES:
            statuses.add(400)  # a write's service refuses what the serializer let through
        if "requestBody" in operation:
            statuses |= {400, 413, 415}
        if view.get_throttles():
            statuses.add(429)
        return statuses

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for status in sorted(self.error_statuses(operation)):
            documented = responses.get(str(status))
            if documented is None:
                responses[str(status)] = ERROR_RESPONSES[str(status)]
            elif "content" not in documented:
                # A view's own description (an upload's 413), with the shared shape.
                responses[str(status)] = {**ERROR_RESPONSES[str(status)], **documented}
        return operation


def error_components(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """The Error and ValidationError shapes ContractAutoSchema's responses refer to."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)
    return result
