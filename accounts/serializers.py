from datetime import datetime, tzinfo
from typing import Any, Protocol

from django.contrib.auth import authenticate
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import presence, rotation, sessions
from accounts.models import User, validate_no_bidi_controls
from accounts.throttles import LoginAttempts
from messenger.rendering import datetime_text


class PublicUser(Protocol):
    """A User, or a row with the same public fields (chats.selectors.MemberUser)."""

    @property
    def pk(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def last_seen(self) -> datetime | None: ...
    @property
    def avatar_sha256(self) -> str: ...


# Where media serves profile pictures (media.urls, "avatar-file"): named by their sha256, so a new
# picture is a new URL and a URL's bytes never change.
AVATAR_URL_PREFIX = "/api/avatars/"


def avatar_url(sha256: str) -> str | None:
    return f"{AVATAR_URL_PREFIX}{sha256}" if sha256 else None


def public_user_data(user: PublicUser, *, is_online: bool | None, zone: tzinfo | None = None) -> dict[str, Any]:
    """PublicUserSerializer's output, built directly (see messenger.rendering; `zone` as there).

    `is_online=None`: the viewer shares no chat with the user, so neither field of presence is shown."""
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": user.display_name,
        "is_online": is_online,
        "last_seen": datetime_text(user.last_seen, zone) if is_online is not None else None,
        "avatar_url": avatar_url(user.avatar_sha256),
    }


class PublicUserSerializer(serializers.ModelSerializer[User]):
    """What anyone may see of a user. Presence (`is_online`, `last_seen`) is null when the caller
    shares no chat with the user."""

    # `is_online` comes from context["online_ids"] when the caller gathered it for the whole page,
    # and from the presence cache otherwise; a user outside context["presence_visible_ids"], when
    # given, shares no chat with the viewer (accounts.selectors.presence_context).

    is_online = serializers.SerializerMethodField(
        help_text="null (with last_seen) when the caller shares no chat with this user"
    )
    avatar_url = serializers.SerializerMethodField(
        help_text=(
            "The profile picture (contract v1.1), at most 512 px on its longest side, for any signed-in user "
            "(Authorization header or ?token=); null when there is none. A new picture is a new URL."
        )
    )

    class Meta:
        model = User
        fields = ["id", "username", "display_name", "is_online", "last_seen", "avatar_url"]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "nullable": True})
    def get_avatar_url(self, user: User) -> str | None:
        return avatar_url(user.avatar_sha256)

    def get_is_online(self, user: User) -> bool | None:
        visible = self.context.get("presence_visible_ids")
        if visible is not None and user.pk not in visible:
            return None
        online = self.context.get("online_ids")
        if online is None:
            return user.pk in presence.online_ids([user.pk])
        return user.pk in online

    def to_representation(self, user: User) -> dict[str, Any]:
        return public_user_data(user, is_online=self.get_is_online(user))


class MeSerializer(PublicUserSerializer):
    """`email`: the confirmed address, or the one given at registration while it awaits confirmation
    (`email_verified` false); `pending_email`: an address asked for and not yet confirmed, or null
    (accounts.email_confirmation)."""

    email = serializers.SerializerMethodField()
    email_verified = serializers.SerializerMethodField()
    pending_email = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [*PublicUserSerializer.Meta.fields, "email", "email_verified", "pending_email", "date_joined"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.EMAIL)
    def get_email(self, user: User) -> str:
        return user.email or user.pending_email

    def get_email_verified(self, user: User) -> bool:
        return user.email is not None

    @extend_schema_field({"type": "string", "format": "email", "nullable": True})
    def get_pending_email(self, user: User) -> str | None:
        return user.pending_email or None

    def to_representation(self, user: User) -> dict[str, Any]:
        return {
            **super().to_representation(user),
            "email": self.get_email(user),
            "email_verified": self.get_email_verified(user),
            "pending_email": self.get_pending_email(user),
            "date_joined": datetime_text(user.date_joined),
        }


class EmailConfirmSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(max_length=512, help_text="The code mailed to the pending address")


class MeUpdateSerializer(serializers.Serializer[User]):
    display_name = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        validators=[validate_no_bidi_controls],
        help_text="No bidi controls (U+202A to U+202E, U+2066 to U+2069)",
    )
    email = serializers.EmailField(required=False)
    password = serializers.CharField(
        write_only=True,
        required=False,
        max_length=128,
        style={"input_type": "password"},
        help_text="The current password: required to change `email`",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """A new email takes the current password: a stolen access token alone cannot move the account
        (and, with it, a password reset) to another address. Checked by the view (MeView.patch),
        under the login's limits; here only its presence."""
        if "email" in attrs and not attrs.get("password"):
            raise serializers.ValidationError({"password": ["Your current password is required to change the email."]})
        return attrs


class RegisterSerializer(serializers.Serializer[User]):
    username = serializers.CharField(min_length=3, max_length=32)
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})
    display_name = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        default="",
        validators=[validate_no_bidi_controls],
        help_text="No bidi controls (U+202A to U+202E, U+2066 to U+2069)",
    )


class LoginSerializer(serializers.Serializer[User]):
    username = serializers.CharField(help_text="Username or email", max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        login = attrs["username"].strip()
        if "@" in login:
            match = User.objects.filter(email__iexact=login).only("username").first()
            if match is not None:
                login = match.username
        # Per username (an email counts as its user's name), besides the view's per-address rate.
        attempts = LoginAttempts(login)
        wait = attempts.begin()
        if wait is not None:
            raise exceptions.Throttled(wait, "Too many failed logins for this account; try again later.")
        user = authenticate(self.context.get("request"), username=login, password=attrs["password"])
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed("No active account found with these credentials.")
        attempts.succeeded()
        attrs["user"] = user
        return attrs


class TokenPairSerializer(serializers.Serializer[Any]):
    access = serializers.CharField()
    refresh = serializers.CharField()


class AuthResultSerializer(TokenPairSerializer):
    user = MeSerializer()


class RefreshSerializer(TokenRefreshSerializer):
    """SimpleJWT's refresh, with a rotation that survives a lost answer (accounts.rotation), a
    token whose user was deleted a 401 (SimpleJWT lets the lookup's DoesNotExist escape as a 500),
    and a token of an ended session (accounts.sessions) a 401, within the grace period too."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            refresh = RefreshToken(attrs["refresh"])
        except TokenError as error:
            answer = rotation.answer_within_grace(attrs["refresh"])
            if answer is None or not _session_current(_payload(answer["refresh"])):
                raise InvalidToken(str(error)) from None
            return answer
        if not _session_current(refresh.payload):
            raise InvalidToken("The session of this token has ended.")
        try:
            return rotation.rotate(refresh)
        except TokenError as error:
            raise InvalidToken(str(error)) from None


def _payload(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = rotation.UncheckedRefreshToken(token).payload  # type: ignore[arg-type]
    return payload


def _session_current(payload: dict[str, Any]) -> bool:
    """Is the token's user active and the token of their current session generation?"""
    user_id = payload.get(api_settings.USER_ID_CLAIM)
    user = User.objects.filter(pk=user_id).only("is_active", "session_generation").first() if user_id else None
    if user is None or not api_settings.USER_AUTHENTICATION_RULE(user):
        raise exceptions.AuthenticationFailed("No active account found for the given token.", "no_active_account")
    return sessions.token_current(payload, user)


class PasswordChangeSerializer(serializers.Serializer[Any]):
    old_password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})
    new_password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})


class LogoutSerializer(serializers.Serializer[Any]):
    refresh = serializers.CharField()


def tokens_for(user: User) -> dict[str, str]:
    refresh = sessions.refresh_for(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}
