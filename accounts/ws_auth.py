"""Who may open a WebSocket: an origin check, then the JWT of `?token=` (SimpleJWT's own validation).

Browsers cannot set headers on a WebSocket, so the access token travels in the query
string. It is never logged: daphne's access log (which prints the full path) is turned
down in settings.LOGGING, and nothing here logs the token or the query string.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

# Origins compared as exact strings rather than parsed as URLs: a page loaded from file://
# (the Electron client's renderer) sends "file://" (Electron, older Chromium) or "null"
# (Chromium 92 and later).
_OPAQUE_ORIGINS = {"null", "file://"}


def origin_allowed(origin: str | None) -> bool:
    """Is a WebSocket handshake with this Origin header admitted?

    - No Origin header: admitted. Browsers always send one; its absence means a non-browser
      client (a bot, a CLI, the bench), which a forged header would get past anyway.
    - An origin whose host is in ALLOWED_HOSTS (the browser client, served same-origin).
    - An entry of WEBSOCKET_ALLOWED_ORIGINS: a URL pattern as Channels' OriginValidator
      understands it ("https://chat.example.com", "app://messenger"), or the exact strings
      "file://" and "null" for the desktop client's file:// pages. Admitting "null" (which a
      sandboxed iframe on any site may also send) costs nothing here because a socket
      authenticates with a bearer token, never with an ambient cookie: a foreign page has
      no credential to ride on. Remove "null" from the setting to refuse it all the same.
    """
    if origin is None:
        return True
    allowed_origins: list[str] = list(settings.WEBSOCKET_ALLOWED_ORIGINS)
    normalized = origin.strip().lower()
    if normalized in _OPAQUE_ORIGINS:
        return normalized in {entry.strip().lower() for entry in allowed_origins}
    patterns = [*settings.ALLOWED_HOSTS, *allowed_origins]
    if "*" in patterns:
        return True
    parsed = urlparse(normalized)
    checker = OriginValidator(None, patterns)
    return any(checker.match_allowed_origin(parsed, pattern) for pattern in patterns)


class OriginCheckMiddleware:
    """Refuse the handshake (HTTP 403) of a WebSocket from a foreign Origin."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        origin = None
        for name, value in scope.get("headers", ()):
            if name == b"origin":
                origin = value.decode("latin1")
                break
        if origin_allowed(origin):
            await self.app(scope, receive, send)
            return
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": 4403})


def _user_for(validated: AccessToken) -> Any:
    try:
        return JWTAuthentication().get_user(validated)
    except AuthenticationFailed:
        return AnonymousUser()


_user_for_async = database_sync_to_async(_user_for, thread_sensitive=False)


async def user_from_token(token: str | None) -> Any:
    """The active user an access token names, else AnonymousUser (missing, bad, expired token)."""
    if not token:
        return AnonymousUser()
    try:
        validated = AccessToken(token)  # type: ignore[arg-type]  # signature, expiry and token type, as the REST API checks them
    except TokenError:
        return AnonymousUser()
    return await _user_for_async(validated)


class JWTAuthMiddleware:
    """Set scope["user"] from `?token=<access JWT>`; the consumer closes 4401 for AnonymousUser."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin1"))
        tokens = query.get("token")
        user = await user_from_token(tokens[-1] if tokens else None)
        await self.app({**scope, "user": user}, receive, send)
