"""Placeholder until the attachment store lands (issue 4)."""

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class AttachmentUploadView(APIView):
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({"detail": "Uploads are not available yet."}, status=501)


class AttachmentFileView(APIView):
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({"detail": "Not found."}, status=404)
