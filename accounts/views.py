from typing import Any

from django.contrib.auth.models import update_last_login
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenRefreshView

from accounts import rotation, services
from accounts.auth import request_user
from accounts.models import User
from accounts.selectors import presence_context, user_search
from accounts.serializers import (
    AuthResultSerializer,
    EmailConfirmSerializer,
    LoginSerializer,
    LogoutSerializer,
    MeSerializer,
    MeUpdateSerializer,
    PasswordChangeSerializer,
    PublicUserSerializer,
    RefreshSerializer,
    RegisterSerializer,
    TokenPairSerializer,
    tokens_for,
)
from accounts.throttles import AddressScopedThrottle, LoginAttempts
from messenger.pagination import PagePagination


class AuthThrottled(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [AddressScopedThrottle]
    throttle_scope = "auth"

    def get_authenticate_header(self, request: Request) -> str:
        # Wrong credentials are a 401 with a challenge, as for a bad token.
        return 'Bearer realm="api"'


class RegisterView(AuthThrottled):
    @extend_schema(
        request=RegisterSerializer,
        responses={201: AuthResultSerializer},
        tags=["auth"],
        description=(
            "The answer is the same whether or not another account has the email: the address waits as the "
            "new account's `pending_email` (`email_verified: false`) until the code mailed to it is given to "
            "`POST /api/auth/email/confirm`; when another account has it, its owner is mailed a notice instead. "
            "A taken username is a 400 (usernames are public)."
        ),
    )
    def post(self, request: Request) -> Response:
        data = RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_create(**data.validated_data)
        body = {"user": MeSerializer(user, context={"online_ids": set()}).data, **tokens_for(user)}
        return Response(body, status=status.HTTP_201_CREATED)


class LoginView(AuthThrottled):
    error_statuses = (401,)  # wrong credentials (messenger.schema)

    @extend_schema(
        request=LoginSerializer,
        responses={200: AuthResultSerializer},
        tags=["auth"],
        description=(
            "Rate-limited twice: by the client's address (`THROTTLE_AUTH`, X-Forwarded-For only through "
            "`TRUSTED_PROXIES`), and by username: after `LOGIN_FAILURES_PER_USERNAME` failures (default 10) "
            "within `LOGIN_FAILURE_WINDOW_SECONDS` (900) of the first, every login to that account is a 429 "
            "with `Retry-After` until the window ends, from any address and with the right password too. "
            "A success does not clear the failures counted."
        ),
    )
    def post(self, request: Request) -> Response:
        data = LoginSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        user: User = data.validated_data["user"]
        update_last_login(User, user)
        body = {"user": MeSerializer(user, context=presence_context([user])).data, **tokens_for(user)}
        return Response(body)


class RefreshView(TokenRefreshView):
    """Exchange a refresh token for a new pair. The old refresh token stops working, except that for
    REFRESH_GRACE_SECONDS it is answered again with the same successor, until that is used
    (a client whose answer was lost stays signed in: accounts.rotation)."""

    serializer_class = RefreshSerializer
    error_statuses = (401,)  # an invalid, expired or blacklisted refresh token (messenger.schema)
    throttle_classes = [AddressScopedThrottle]
    throttle_scope = "auth"

    @extend_schema(responses={200: TokenPairSerializer}, tags=["auth"])
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)


class LogoutView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(request=LogoutSerializer, responses={205: None}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = LogoutSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                token = RefreshToken(data.validated_data["refresh"])
                token.blacklist()
                rotation.revoke_successor(token)
        except TokenError as error:
            # A token rotated within the grace period: its successor, which the client may never
            # have received, stops working (accounts.rotation).
            if not rotation.revoke_successor_of(data.validated_data["refresh"]):
                raise serializers.ValidationError({"refresh": [str(error)]}) from None
        return Response(status=status.HTTP_205_RESET_CONTENT)


class PasswordChangeView(APIView):
    """Change the caller's password: every other session ends (refresh tokens, access tokens and
    open sockets on every process: close 4401), and the answer is the new session's token pair.

    A wrong `old_password` is a 400 on that field, like a `new_password` Django's validators refuse:
    the caller is authenticated (a 401 would tell a client to refresh and sign in again), and DRF's
    403 means a caller without the permission. Throttled like the login (scope "auth")."""

    throttle_classes = [AddressScopedThrottle]
    throttle_scope = "auth"

    @extend_schema(request=PasswordChangeSerializer, responses={200: TokenPairSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = PasswordChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request_user(request)
        # A wrong old password counts as a failed login of the account, as for an email change: a
        # stolen access token is no way round the per-username limit to guess the password.
        attempts = LoginAttempts(user.username)
        wait = attempts.begin()
        if wait is not None:
            raise Throttled(wait, "Too many failed logins for this account; try again later.")
        try:
            user = services.user_password_change(user=user, **data.validated_data)
        except DjangoValidationError as error:
            if "old_password" not in error.message_dict:
                attempts.succeeded()
            raise
        attempts.succeeded()
        return Response(tokens_for(user))


class LogoutAllView(APIView):
    """End every session of the caller: all their refresh and access tokens stop working, and their
    open sockets on every process are closed with 4401."""

    @extend_schema(request=None, responses={205: None}, tags=["auth"])
    def post(self, request: Request) -> Response:
        services.user_logout_all(user=request_user(request))
        return Response(status=status.HTTP_205_RESET_CONTENT)


class MeView(APIView):
    throttle_scope = "email"  # read by check_password_for_email_change only: GET and other PATCHes are free

    @extend_schema(responses=MeSerializer, tags=["auth"])
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request_user(request), context=presence_context([request_user(request)])).data)

    @extend_schema(
        request=MeUpdateSerializer,
        responses={
            200: MeSerializer,
            429: OpenApiResponse(
                description=(
                    "An email change over its rate (`THROTTLE_EMAIL` per user), or the account's failed "
                    "password checks over `LOGIN_FAILURES_PER_USERNAME` (a wrong `password` here counts "
                    "as a failed login): try again after Retry-After seconds"
                )
            ),
        },
        tags=["auth"],
        description=(
            "Changing `email` needs the current `password` too (400 without it or when it is wrong). "
            "Email changes are rate-limited per user (`THROTTLE_EMAIL`), and a wrong password counts "
            "against the account's failed logins. A changed `display_name` is announced after the commit as "
            "`user.updated` {user: PublicUser} to the /ws/ sockets of everyone sharing a chat with the caller "
            "and to the caller's own (docs/asyncapi.yaml)."
        ),
    )
    def patch(self, request: Request) -> Response:
        data = MeUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        password = fields.pop("password", None)
        user = request_user(request)
        if "email" in fields:
            self.check_password_for_email_change(request, user, password or "")
        user = services.user_update(user=user, **fields)
        return Response(MeSerializer(user, context=presence_context([user])).data)

    def check_password_for_email_change(self, request: Request, user: User, password: str) -> None:
        """The `email` scope's rate per user, then the password, counted as a login attempt."""
        throttle = AddressScopedThrottle()
        if not throttle.allow_request(request, self):
            raise Throttled(throttle.wait())
        attempts = LoginAttempts(user.username)
        wait = attempts.begin()
        if wait is not None:
            raise Throttled(wait, "Too many failed logins for this account; try again later.")
        if not user.check_password(password):
            raise serializers.ValidationError({"password": ["The password is not correct."]})
        attempts.succeeded()


class EmailConfirmView(APIView):
    """The code mailed to the pending address makes it the account's email (accounts.email_confirmation)."""

    throttle_classes = [AddressScopedThrottle]
    throttle_scope = "auth"

    @extend_schema(request=EmailConfirmSerializer, responses={200: MeSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = EmailConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_email_confirm(user=request_user(request), code=data.validated_data["code"])
        return Response(MeSerializer(user, context=presence_context([user])).data)


class UserSearchView(generics.ListAPIView[User]):
    serializer_class = PublicUserSerializer
    pagination_class = PagePagination

    def get_queryset(self) -> Any:
        query = self.request.query_params.get("q", "")
        if not query.strip():
            raise serializers.ValidationError({"q": ["Type at least one character to search."]})
        if len(query) > 64:
            raise serializers.ValidationError({"q": ["Ensure the search has at most 64 characters."]})
        return user_search(query=query, exclude=request_user(self.request))

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        users = args[0] if args else []
        kwargs["context"] = {
            **self.get_serializer_context(),
            **presence_context(users, viewer=request_user(self.request)),
        }
        return super().get_serializer(*args, **kwargs)

    @extend_schema(
        parameters=[OpenApiParameter("q", str, required=True, description="Part of a username or display name")],
        tags=["users"],
        description="`is_online` and `last_seen` are null for users who share no chat with the caller.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class UserDetailView(generics.RetrieveAPIView[User]):
    """PublicUser; presence null unless the caller shares a chat with the user."""

    serializer_class = PublicUserSerializer
    queryset = User.objects.filter(is_active=True)

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        users = [args[0]] if args else []
        kwargs["context"] = {
            **self.get_serializer_context(),
            **presence_context(users, viewer=request_user(self.request)),
        }
        return super().get_serializer(*args, **kwargs)

    @extend_schema(
        tags=["users"],
        description="`is_online` and `last_seen` are null when the caller shares no chat with the user.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
