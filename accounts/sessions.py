"""Sessions: every token carries its user's session generation; ending the sessions bumps it.

`User.session_generation` is copied into each refresh token as the `generation` claim, and from it
into each access token (SimpleJWT copies a refresh token's claims). A token whose generation is not
the user's current one is refused everywhere:

- REST: `SessionJWTAuthentication` (the user row is loaded anyway: one integer compared);
- refresh: accounts.serializers.RefreshSerializer, also within the rotation's grace period;
- sockets: on connect (accounts.ws_auth.resolve_users) and on an `auth` renewal; an open socket is
  closed with 4401 when told, after the commit, that its user's sessions ended (the `sessions_ended`
  signal, which chats.realtime.sessions turns into a control event on every process).

`sessions_end` bumps the generation and blacklists every outstanding refresh token of the user (the
generation alone already refuses them; the blacklist says so in the admin too). It runs on a
password change, on logging out everywhere, and from User.save on a deactivation or a new
password set any other way (the admin's password form). A token without the claim (issued before it
existed) counts as generation 0.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import is_password_usable
from django.db import transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

GENERATION_CLAIM = "generation"

# Sent after the commit that ended a user's sessions: `user_id`, `generation` (the new one).
sessions_ended = Signal()


def token_generation(token: Any) -> int:
    """The `generation` claim of a token (or of its payload dict); 0 when it has none."""
    value = token.get(GENERATION_CLAIM, 0)
    return value if isinstance(value, int) else -1


def token_current(token: Any, user: Any) -> bool:
    """Was the token issued for the user's current session generation?"""
    return token_generation(token) == user.session_generation


def refresh_for(user: Any) -> RefreshToken:
    """A new refresh token of the user's current generation (its access token carries it too)."""
    refresh = RefreshToken.for_user(user)
    refresh[GENERATION_CLAIM] = user.session_generation
    return refresh


def save_ends_sessions(user: Any) -> bool:
    """Does saving this (existing) user end their sessions: a new password, or a deactivation?

    set_password keeps the raw password in `_password` until the save; check_password's rehash on
    login clears it first (the same password, no new session generation). A first password, given
    to a user who had none (empty or unusable: no password login, so no session), ends nothing.
    One query, only when a password is set or an inactive user is saved.
    """
    new_password = getattr(user, "_password", None) is not None
    if not new_password and user.is_active:
        return False
    stored = type(user).objects.filter(pk=user.pk).values_list("password", "is_active").first()
    if stored is None:
        return False
    old_password, was_active = stored
    if new_password and old_password and is_password_usable(old_password):
        return True
    return bool(was_active and not user.is_active)


def sessions_end(user: Any) -> None:
    """Bump the user's session generation (every token issued so far stops working), blacklist their
    outstanding refresh tokens, and announce it after the commit (call inside a transaction)."""
    model = type(user)
    model.objects.filter(pk=user.pk).update(session_generation=F("session_generation") + 1)
    generation = model.objects.filter(pk=user.pk).values_list("session_generation", flat=True).get()
    user.session_generation = generation
    live = OutstandingToken.objects.filter(
        user_id=user.pk, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token_id=pk) for pk in live.values_list("pk", flat=True)], ignore_conflicts=True
    )
    user_id = user.pk
    transaction.on_commit(
        lambda: sessions_ended.send(sender=model, user_id=user_id, generation=generation), robust=True
    )


class SessionJWTAuthentication(JWTAuthentication):
    """SimpleJWT's bearer authentication, refusing a token of an older session generation (401)."""

    def get_user(self, validated_token: Any) -> Any:
        user = super().get_user(validated_token)
        if not token_current(validated_token, user):
            raise AuthenticationFailed("The session of this token has ended.", code="session_ended")
        return user
