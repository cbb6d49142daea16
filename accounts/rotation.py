"""Refresh tokens rotate, and a rotation survives a lost answer (settings.REFRESH_GRACE_SECONDS).

SimpleJWT blacklists a refresh token as it answers its successor (ROTATE_REFRESH_TOKENS with
BLACKLIST_AFTER_ROTATION). When that answer is lost -- a dropped connection, a client killed
before it stored the new token -- the client's next refresh presents the old token, gets a 401 and
signs the user out. So each rotation claims, in the cache and for REFRESH_GRACE_SECONDS, the old
token's one successor: within that time the old token is answered with that same successor (and a
fresh access token), as long as the successor has not been used or revoked itself.

- One successor per token (RFC 9700 §4.14.2's "single successor"): a token used twice, or by two
  requests at once, never starts a second chain. The claim is `cache.add`, atomic across processes
  with Redis; the request that loses it answers the winner's successor.
- Once the successor has been used (rotated in turn) or logged out, the client evidently had it:
  the old token is refused, as after the grace period.
- Logging out with either token revokes both (`revoke_successor`).
- The cache holds jtis only, never a token; the successor's text is SimpleJWT's OutstandingToken.
- If the cache cannot be reached, rotation goes on without grace (the failure is logged).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from uuid import uuid4

from django.conf import settings
from django.core.cache import cache
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

logger = logging.getLogger(__name__)

# The winner of a claim writes its successor's row a few milliseconds after the claim.
SUCCESSOR_WAIT_SECONDS = 1.0
SUCCESSOR_POLL_SECONDS = 0.05


def _key(jti: str) -> str:
    return f"refresh-successor:{jti}"


class UncheckedRefreshToken(RefreshToken):
    """A refresh token checked for signature, expiry and type, but not against the blacklist."""

    def check_blacklist(self) -> None:
        return None


def rotate(refresh: RefreshToken) -> dict[str, str]:
    """The answer to a refresh with a valid (not blacklisted) token: a fresh access token and the
    token's successor, the token itself blacklisted. Another request rotating the same token at
    the same moment gets the same successor."""
    data = {"access": str(refresh.access_token)}
    old_jti = str(refresh.payload[api_settings.JTI_CLAIM])
    new_jti = uuid4().hex
    if not _claim(old_jti, new_jti):
        answer = successor_answer(old_jti)
        if answer is None:
            raise TokenError("Token is blacklisted")
        return answer
    refresh.blacklist()
    refresh.payload[api_settings.JTI_CLAIM] = new_jti
    refresh.set_exp()
    refresh.set_iat()
    refresh.outstand()
    data["refresh"] = str(refresh)
    return data


def answer_within_grace(token: str) -> dict[str, str] | None:
    """The answer to a blacklisted token rotated less than REFRESH_GRACE_SECONDS ago whose
    successor is still unused, or None (a 401)."""
    try:
        old = UncheckedRefreshToken(token)  # type: ignore[arg-type]
    except TokenError:
        return None
    return successor_answer(str(old.payload[api_settings.JTI_CLAIM]))


def successor_answer(old_jti: str) -> dict[str, str] | None:
    new_jti = _successor_of(old_jti)
    if new_jti is None:
        return None
    deadline = time.monotonic() + SUCCESSOR_WAIT_SECONDS
    while (outstanding := OutstandingToken.objects.filter(jti=new_jti).first()) is None:
        if time.monotonic() > deadline:
            return None
        time.sleep(SUCCESSOR_POLL_SECONDS)
    try:
        successor = RefreshToken(outstanding.token)  # type: ignore[arg-type]
    except TokenError:  # used (rotated in turn), logged out, or expired
        return None
    return {"access": str(successor.access_token), "refresh": outstanding.token}


def revoke_successor(token: RefreshToken) -> bool:
    """On logout: the successor of a token rotated within the grace period stops working too, and
    the grace ends. False when the token has no such successor."""
    jti = str(token.payload[api_settings.JTI_CLAIM])
    new_jti = _successor_of(jti)
    if new_jti is None:
        return False
    _forget(jti)
    outstanding = OutstandingToken.objects.filter(jti=new_jti).first()
    if outstanding is not None:
        BlacklistedToken.objects.get_or_create(token=outstanding)
    return True


def revoke_successor_of(token: str) -> bool:
    """revoke_successor for a token that is blacklisted already (rotated): False if it is invalid,
    expired, or was not rotated within the grace period."""
    try:
        old = UncheckedRefreshToken(token)  # type: ignore[arg-type]
    except TokenError:
        return False
    return revoke_successor(old)


def _grace() -> int:
    seconds: int = settings.REFRESH_GRACE_SECONDS
    return seconds


def _now() -> float:
    return time.time()


def _claim(old_jti: str, new_jti: str) -> bool:
    if _grace() <= 0:
        return True
    try:
        return bool(cache.add(_key(old_jti), f"{new_jti} {_now()}", timeout=_grace()))
    except Exception:
        logger.warning("refresh rotation: cache unreachable, rotating without grace", exc_info=True)
        return True


def _successor_of(jti: str) -> str | None:
    if _grace() <= 0:
        return None
    try:
        value: Any = cache.get(_key(jti))
    except Exception:
        logger.warning("refresh rotation: cache unreachable, no grace", exc_info=True)
        return None
    if not isinstance(value, str):
        return None
    # The entry's own time, not only its expiry: a cache may keep an entry a little longer.
    new_jti, _, rotated_at = value.partition(" ")
    return new_jti if _now() - float(rotated_at) <= _grace() else None


def _forget(jti: str) -> None:
    try:
        cache.delete(_key(jti))
    except Exception:
        logger.warning("refresh rotation: cache unreachable", exc_info=True)
