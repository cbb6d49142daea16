"""Who may open a WebSocket: an origin check, then the JWT of `?token=` (SimpleJWT's own validation).

Browsers cannot set headers on a WebSocket, so the access token travels in the query
string. It is never logged: daphne's access log (which prints the full path) is turned
down in settings.LOGGING, and nothing here logs the token or the query string.
"""

from __future__ import annotations

from collections.abc import Awaitable
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils.functional import SimpleLazyObject
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from accounts.sessions import SessionJWTAuthentication, token_current

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
    """Refuse the handshake (HTTP 403) of a WebSocket from a foreign Origin.

    Like JWTAuthMiddleware, it hands an admitted connection on instead of awaiting it: the inner
    application's coroutine is what the server awaits, so no frame of this middleware (with its
    locals) stays alive for as long as the socket is open.
    """

    _asgi_single_callable = True  # asgiref: an ASGI 3 application, though __call__ is not async

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        origin = None
        for name, value in scope.get("headers", ()):
            if name == b"origin":
                origin = value.decode("latin1")
                break
        if origin_allowed(origin):
            result: Awaitable[None] = self.app(scope, receive, send)
            return result
        return self._refuse(receive, send)

    async def _refuse(self, receive: Any, send: Any) -> None:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": 4403})


def _user_for(validated: AccessToken) -> Any:
    try:
        return SessionJWTAuthentication().get_user(validated)
    except AuthenticationFailed:
        return AnonymousUser()


class LazyTokenUser(SimpleLazyObject):
    """scope["user"] for a token that passed validation: the user it names, looked up on first
    use -- which must happen in a worker thread. `token` is the validated AccessToken, so that
    the consumer can look up many connecting users in one query (`resolve_users`)."""

    def __init__(self, token: AccessToken) -> None:
        super().__init__(partial(_user_for, token))
        self.__dict__["token"] = token

    def resolve_to(self, user: Any) -> None:
        """Become `user` (looked up in a batch) and let go of the token: a socket keeps its scope."""
        self.__dict__["_wrapped"] = user if user is not None else AnonymousUser()
        self.__dict__["_setupfunc"] = None
        self.__dict__.pop("token", None)


def user_from_token(token: str | None) -> Any:
    """AnonymousUser for a missing, malformed, forged or expired token; a LazyTokenUser otherwise."""
    if not token:
        return AnonymousUser()
    try:
        validated = AccessToken(token)  # type: ignore[arg-type]  # signature, expiry, type: as REST checks them
    except TokenError:
        return AnonymousUser()
    return LazyTokenUser(validated)


def resolve_users(scope_users: list[Any]) -> list[Any]:
    """The active User behind each scope["user"], or None; one query for all (call in a thread).

    The same rules as REST's SessionJWTAuthentication.get_user: the user must exist and, with
    CHECK_USER_IS_ACTIVE, be active, and the token be of the user's current session generation
    (accounts.sessions); with CHECK_REVOKE_TOKEN each token goes through get_user itself.
    """
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.settings import api_settings

    results: list[Any] = [None] * len(scope_users)
    wanted: dict[Any, list[int]] = {}
    for index, scope_user in enumerate(scope_users):
        batchable = isinstance(scope_user, LazyTokenUser) and "token" in scope_user.__dict__
        if not batchable or api_settings.CHECK_REVOKE_TOKEN:
            results[index] = resolve_user(scope_user)
            continue
        claim = scope_user.token.get(api_settings.USER_ID_CLAIM)
        if claim is not None:
            # SimpleJWT 5.5 writes the id as a string: compare as strings.
            wanted.setdefault(str(claim), []).append(index)
    if wanted:
        field = api_settings.USER_ID_FIELD
        found = get_user_model().objects.filter(**{f"{field}__in": list(wanted)})
        for user in found:
            if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
                continue
            for index in wanted.get(str(getattr(user, field)), []):
                if token_current(scope_users[index].token, user):
                    results[index] = user
        for indexes in wanted.values():
            for index in indexes:
                scope_users[index].resolve_to(results[index])
    return results


def resolve_user(user: Any) -> Any:
    """The active User behind scope["user"], or None (synchronous: call it in a worker thread).

    A deleted or deactivated user's still-valid token resolves to None, as it gets 401 over REST.
    """
    if isinstance(user, SimpleLazyObject):
        if not user.is_authenticated:  # type: ignore[attr-defined]  # evaluates it
            return None
        user = user._wrapped  # type: ignore[attr-defined]
    return user if user is not None and user.is_authenticated else None


class JWTAuthMiddleware:
    """Set scope["user"] from `?token=<access JWT>`; the consumer closes 4401 unless it resolves.

    Hands the connection on without staying on the call stack (see OriginCheckMiddleware).
    """

    _asgi_single_callable = True

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        query = parse_qs(scope.get("query_string", b"").decode("latin1"))
        tokens = query.get("token")
        user = user_from_token(tokens[-1] if tokens else None)
        result: Awaitable[None] = self.app({**scope, "user": user}, receive, send)
        return result
