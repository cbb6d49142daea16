"""Every answer under /api/ is JSON, errors included (contract v1.1, "Errors and overload").

DRF renders its own errors as JSON (messenger.exceptions). What it never sees is answered by Django
as an HTML page: a path no route matches (404), an exception that escaped a view (500, or the
debug page when DEBUG), a body too large or a bad host met before a view runs (400, 413). This
middleware, outermost, turns such a page under /api/ into `{"detail": "..."}` with the same status.
It rewrites the response only, after Django has logged the error and signalled it (so the test
client still re-raises a view's exception).
"""

from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from rest_framework.response import Response

API_PREFIX = "/api/"

# What a client is told; a 500's detail is the contract's, never the exception's text.
DETAILS = {
    400: "Bad request.",
    404: "Not found.",
    500: "Server error.",
}


def error_detail(status: int) -> str:
    if status in DETAILS:
        return DETAILS[status]
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:
        return "Error."


class JsonErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and (request.path.startswith(API_PREFIX) or request.path == API_PREFIX.rstrip("/"))
            # DRF's own errors are JSON already (or, under DEBUG, the browsable page a browser asked for).
            and not isinstance(response, Response)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            answer = JsonResponse({"detail": error_detail(response.status_code)}, status=response.status_code)
            # The page's headers (the security middleware's, Allow, Retry-After...), but its body's.
            for header, value in response.items():
                if header.lower() not in ("content-type", "content-length"):
                    answer[header] = value
            return answer
        return response
