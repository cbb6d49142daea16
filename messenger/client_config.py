"""GET /api/config: the limits a client needs, read from the settings, so that no client keeps a copy
of a server constant (a draft over the limit, a file too large, a token about to expire)."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from media.validation import KINDS


class ClientConfigSerializer(serializers.Serializer[Any]):
    message_max_length = serializers.IntegerField(help_text="A message's content, in characters after trimming")
    upload_max_bytes = serializers.IntegerField(help_text="The largest image (kind `image`)")
    file_max_bytes = serializers.IntegerField(help_text="The largest file that is not an image (kind `file`)")
    image_types = serializers.ListField(
        child=serializers.CharField(), help_text="The content types accepted as images (judged by the bytes)"
    )
    group_max_members = serializers.IntegerField()
    typing_throttle_seconds = serializers.IntegerField(help_text="At most one `typing` event per user and chat")
    access_token_seconds = serializers.IntegerField(help_text="An access token's lifetime: refresh before it ends")


def client_config() -> dict[str, Any]:
    access_lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    assert isinstance(access_lifetime, timedelta)
    return {
        "message_max_length": settings.MESSAGE_MAX_LENGTH,
        "upload_max_bytes": settings.UPLOAD_MAX_BYTES,
        "file_max_bytes": settings.FILE_MAX_BYTES,
        "image_types": list(KINDS),
        "group_max_members": settings.GROUP_MAX_MEMBERS,
        "typing_throttle_seconds": settings.TYPING_THROTTLE_SECONDS,
        "access_token_seconds": int(access_lifetime.total_seconds()),
    }


class ClientConfigView(APIView):
    # Public: a sign-in page shows the rules too, and a stale token must not hide them.
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        responses=ClientConfigSerializer,
        tags=["config"],
        description="Addition to v1 (contract v1.1): the server's limits, from its settings. No token needed.",
    )
    def get(self, request: Request) -> Response:
        return Response(client_config())
