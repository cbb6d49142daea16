"""Uploading an image or any file (POST /api/attachments) and fetching its bytes (GET attachment.url);
setting a profile picture (PUT/DELETE /api/auth/me/avatar) and fetching it (GET avatar_url)."""

import logging
import re
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.utils.http import content_disposition_header, parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import request_user
from accounts.models import User
from accounts.selectors import presence_context
from accounts.serializers import MeSerializer
from accounts.sessions import SessionJWTAuthentication
from accounts.throttles import AddressScopedThrottle
from media import access, avatars, services, store, validation
from media.authentication import AccessTokenQueryAuthentication
from media.models import Attachment, Blob
from media.serializers import AttachmentSerializer, AttachmentUploadSerializer
from media.uploads import BoundedUploadHandler, UploadQuotaExceeded, UploadTooLarge
from messenger.exceptions import Unavailable

logger = logging.getLogger(__name__)

STORE_UNREACHABLE = (
    'The object store (MEDIA_STORAGE=s3) could not be reached: `{"detail": "…"}` with Retry-After. With '
    "MEDIA_STORAGE=s3 the server streams the bytes from the bucket after the access check, with the same "
    "headers (never a redirect to the bucket)."
)
INSUFFICIENT_STORAGE_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}


@extend_schema(tags=["attachments"])
class AttachmentUploadView(APIView):
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [AddressScopedThrottle]
    throttle_scope = "upload"

    @extend_schema(
        request={"multipart/form-data": AttachmentUploadSerializer},
        responses={
            201: AttachmentSerializer,
            400: OpenApiResponse(
                description=(
                    "Bytes that announce a PNG, JPEG, GIF or WebP image (its magic number) but do not decode as "
                    "one, an image of more than UPLOAD_MAX_PIXELS, an animation past UPLOAD_MAX_FRAMES frames or "
                    'UPLOAD_MAX_ANIMATION_PIXELS in all, or an empty file: {"file": ["…"]}'
                )
            ),
            413: OpenApiResponse(
                description=(
                    "An image larger than UPLOAD_MAX_BYTES (default 10 MB), any other file larger than "
                    'FILE_MAX_BYTES (default 50 MB): `{"file": ["…"]}`; or past the uploader\'s storage quota '
                    '(UPLOAD_QUOTA_BYTES, default 1 GB; each upload counts its stored size): `{"detail": "…"}`, '
                    "which says how much is used. Uploads no message carries are deleted after "
                    "UPLOAD_UNATTACHED_HOURS (default 24), which frees their room. 413 rather than 507: the "
                    "request is larger than this user may store, while 507 says the server's disk is full."
                ),
            ),
            503: OpenApiResponse(
                description=(
                    "The database could not answer, no image decode slot came free within "
                    "UPLOAD_DECODE_WAIT_SECONDS (UPLOAD_MAX_CONCURRENT_DECODES per process), or the object "
                    'store (MEDIA_STORAGE=s3) could not be reached: `{"detail": "…"}` with Retry-After; '
                    "nothing was recorded."
                ),
            ),
            507: OpenApiResponse(
                response=INSUFFICIENT_STORAGE_SCHEMA,
                description=(
                    'The server\'s disk is full: `{"detail": "…"}`; nothing was stored. Bytes the server '
                    "already holds (the same image uploaded before, by anyone) are still accepted. Not a 503: "
                    "retrying soon does not help until an operator frees space; everything else keeps working."
                ),
            ),
        },
        description=(
            "Upload an image or any other file as multipart `file`. It is judged by its bytes only (never by "
            'its name or Content-Type): a PNG, JPEG, GIF or WebP that decodes is `kind: "image"`, its '
            "metadata removed (EXIF is rebuilt with its Orientation alone; XMP, comments and the rest go, in "
            'every format); anything else is `kind: "file"`, kept byte for byte and only ever served as a '
            "download (`application/octet-stream`). `name` is the file name sent, made safe (no folders, "
            "control or bidi characters; at most 128 characters). The same bytes are stored once; each upload "
            "counts toward its uploader's quota."
        ),
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Set before request.data is first read: every file goes to disk, and a too large body stops early.
        request._request.upload_handlers = [BoundedUploadHandler(request._request)]
        data = AttachmentUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        uploader = request_user(request)
        services.attachments_sweep_expired(uploader=uploader)
        try:
            attachment = services.attachment_create(uploader=uploader, file=data.validated_data["file"])
        except validation.FileTooLarge as error:
            raise UploadTooLarge(error.message) from error
        except services.QuotaExceeded as error:
            raise UploadQuotaExceeded(str(error)) from error
        except validation.DecodersBusy as error:
            raise Unavailable("Too many images are being checked right now; try again shortly.") from error
        attachment = Attachment.objects.select_related("blob").get(pk=attachment.pk)
        return Response(AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)


class AnyAccept(BaseContentNegotiation):
    """The file view answers bytes whatever the Accept header; errors still render as JSON."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> Any:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


@extend_schema(tags=["attachments"])
class AttachmentFileView(APIView):
    # The header keeps working; ?token=<access JWT> is accepted on this URL only, because a
    # browser cannot add an Authorization header to <img src>.
    authentication_classes = [SessionJWTAuthentication, AccessTokenQueryAuthentication]
    content_negotiation_class = AnyAccept

    @extend_schema(
        responses={
            (200, "image/*"): OpenApiResponse(OpenApiTypes.BINARY, description="An image's bytes"),
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="A file's bytes, as a download (`Content-Disposition: attachment`)"
            ),
            304: OpenApiResponse(description="If-None-Match matched the ETag (the sha256)"),
            404: OpenApiResponse(description="No such attachment, or the caller may not see it"),
            503: OpenApiResponse(description=STORE_UNREACHABLE),
        },
        description=(
            "The bytes, for the uploader and the members of a chat where a message carries it. Strong ETag "
            "(the sha256), Cache-Control: private, X-Content-Type-Options: nosniff and a sandboxing "
            "Content-Security-Policy. An image is served inline with its type; any other file (`kind: "
            '"file"`) as `application/octet-stream` with `Content-Disposition: attachment; '
            "filename*=UTF-8''<its name>`."
        ),
    )
    def get(self, request: Request, pk: str) -> HttpResponseBase:
        attachment = access.attachment_for_viewer(attachment_id=int(pk), user=request_user(request))
        if attachment is None:
            raise Http404("No attachment matches the given query.")
        blob = attachment.blob
        etag = f'"{blob.sha256}"'
        if _matches(request.headers.get("If-None-Match", ""), etag):
            return _with_headers(HttpResponseNotModified(), attachment, etag)
        response = _blob_response(blob, missing="No attachment matches the given query.")
        return _with_headers(response, attachment, etag)


def _matches(if_none_match: str, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = parse_etags(if_none_match)
    # If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/"x" matches "x".
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


def _with_headers(response: HttpResponseBase, attachment: Attachment, etag: str) -> HttpResponseBase:
    blob = attachment.blob
    response["ETag"] = etag
    response["Cache-Control"] = f"private, max-age={settings.ATTACHMENT_CACHE_SECONDS}"
    response["Vary"] = "Authorization"
    response["X-Content-Type-Options"] = "nosniff"
    # Even if a browser were talked into rendering the bytes as a document, it could run nothing.
    response["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; sandbox"
        if attachment.kind == Attachment.Kind.IMAGE
        else "sandbox; default-src 'none'"
    )
    # ?token= must not travel further in a Referer.
    response["Referrer-Policy"] = "no-referrer"
    if not isinstance(response, HttpResponseNotModified):
        if attachment.kind == Attachment.Kind.IMAGE:
            response["Content-Type"] = blob.content_type
            response["Content-Disposition"] = content_disposition_header(False, safe_file_name(attachment)) or "inline"
        else:
            response["Content-Type"] = validation.FILE_CONTENT_TYPE
            response["Content-Disposition"] = download_disposition(attachment)
    return response


def _blob_response(blob: Blob, *, missing: str) -> HttpResponseBase:
    """The blob's bytes, once the caller has checked access: handed to the web server (SENDFILE_HEADER,
    local disk only), else streamed by this process from the store (a file, or a bucket's object as it
    arrives: media.s3). Http404 with `missing` when the store has lost them."""
    if settings.SENDFILE_HEADER and store.backend().sendfile:
        response = HttpResponse()
        response[settings.SENDFILE_HEADER] = _sendfile_target(blob.sha256)
        return response
    try:
        handle = store.open_blob(blob.sha256)
    except FileNotFoundError:
        logger.error("blob file missing (sha256 %s)", blob.sha256)
        raise Http404(missing) from None
    streamed = FileResponse(handle)  # closes the handle when the response is done
    if not streamed.has_header("Content-Length"):  # a bucket's body cannot tell its length; the row can
        streamed["Content-Length"] = str(blob.size)
    return streamed


def _sendfile_target(sha256: str) -> str:
    """X-Accel-Redirect (nginx) takes an internal URI; X-Sendfile (Apache, lighttpd) a file path."""
    if settings.SENDFILE_HEADER.lower() == "x-accel-redirect":
        return settings.SENDFILE_URL_PREFIX.rstrip("/") + "/" + store.relative_path(sha256)
    return str(store.blob_path(sha256))


UNSAFE_NAME_CHARS = re.compile(r"[^\w\- ]+")
# One "_" per character outside printable ASCII that is safe in a quoted header value.
ASCII_FALLBACK_UNSAFE = re.compile(r"[^A-Za-z0-9._\- ]")


def safe_file_name(attachment: Attachment) -> str:
    """The uploader's name reduced to letters, digits, `-`, `_` and spaces, with the real extension.

    The extension comes from the stored bytes' type, never from the name sent.
    """
    stem = PurePath(attachment.name).stem if attachment.name else ""
    stem = UNSAFE_NAME_CHARS.sub("_", stem).strip(" _.")[:100]
    if not stem:
        stem = f"attachment-{attachment.pk}"
    kind = validation.KINDS.get(attachment.blob.content_type)
    extension = kind.extension if kind else "bin"
    return f"{stem}.{extension}"


def download_disposition(attachment: Attachment) -> str:
    """`attachment` with the file's safe name: an ASCII fallback, and the name itself as RFC 5987
    UTF-8 (`filename*`), which every current browser prefers."""
    name = attachment.name or f"file-{attachment.pk}"
    fallback = ASCII_FALLBACK_UNSAFE.sub("_", name).strip(" _.") or f"file-{attachment.pk}"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@extend_schema(tags=["auth"])
class AvatarView(APIView):
    """The caller's profile picture (contract v1.1): PUT an image to set it, DELETE to remove it."""

    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [AddressScopedThrottle]
    throttle_scope = "upload"

    @extend_schema(
        request={"multipart/form-data": AttachmentUploadSerializer},
        responses={
            200: MeSerializer,
            400: OpenApiResponse(
                description=(
                    "Not a PNG, JPEG, GIF or WebP image that decodes (judged by its bytes), or past the image "
                    'limits (UPLOAD_MAX_PIXELS, animations): {"file": ["…"]}'
                )
            ),
            413: OpenApiResponse(description='Larger than UPLOAD_MAX_BYTES: `{"file": ["…"]}`'),
            503: OpenApiResponse(
                description=(
                    "The database could not answer, no image decode slot came free within "
                    "UPLOAD_DECODE_WAIT_SECONDS, or the object store (MEDIA_STORAGE=s3) could not be reached: "
                    '`{"detail": "…"}` with Retry-After; nothing changed.'
                ),
            ),
            507: OpenApiResponse(
                response=INSUFFICIENT_STORAGE_SCHEMA,
                description='The server\'s disk is full: `{"detail": "…"}`; nothing changed.',
            ),
        },
        description=(
            "Set the caller's profile picture from an image upload (multipart `file`; the image rules of "
            "`POST /api/attachments`). It is stored shrunk to at most 512 px on its longest side (a JPEG stays "
            "a JPEG, anything else becomes a PNG of its first frame, metadata gone), content-addressed: "
            "`avatar_url` changes with the picture. Not counted in the upload quota. A new picture is announced "
            "after the commit as `user.updated` {user: PublicUser} to the /ws/ sockets of everyone sharing a chat "
            "with the caller and to the caller's own (docs/asyncapi.yaml)."
        ),
    )
    def put(self, request: Request) -> Response:
        request._request.upload_handlers = [BoundedUploadHandler(request._request)]
        data = AttachmentUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = avatars.avatar_set(user=request_user(request), file=data.validated_data["file"])
        except validation.FileTooLarge as error:
            raise UploadTooLarge(error.message) from error
        except validation.DecodersBusy as error:
            raise Unavailable("Too many images are being checked right now; try again shortly.") from error
        return Response(MeSerializer(user, context=presence_context([user])).data)

    @extend_schema(
        request=None,
        responses={200: MeSerializer},
        description=(
            "Remove the caller's profile picture; when there was one, `user.updated` tells everyone sharing a "
            "chat with the caller, and the caller's other sockets, after the commit (docs/asyncapi.yaml)."
        ),
    )
    def delete(self, request: Request) -> Response:
        user = avatars.avatar_delete(user=request_user(request))
        return Response(MeSerializer(user, context=presence_context([user])).data)


@extend_schema(tags=["users"])
class AvatarFileView(APIView):
    """A profile picture's bytes, for any signed-in user: it is shown beside its user's name everywhere."""

    authentication_classes = [SessionJWTAuthentication, AccessTokenQueryAuthentication]
    content_negotiation_class = AnyAccept

    @extend_schema(
        responses={
            (200, "image/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The picture (PNG or JPEG)"),
            304: OpenApiResponse(description="If-None-Match matched the ETag (the sha256)"),
            404: OpenApiResponse(description="No user has this picture"),
            503: OpenApiResponse(description=STORE_UNREACHABLE),
        },
        description=(
            "Addition (contract v1.1): a PublicUser's `avatar_url`. Any signed-in user may fetch it "
            "(Authorization header, or ?token= for <img src>). Its URL names its bytes, so it is cached for "
            "a year (`Cache-Control: private, max-age=31536000, immutable`), strong ETag."
        ),
    )
    def get(self, request: Request, sha256: str) -> HttpResponseBase:
        blob = Blob.objects.filter(sha256=sha256, content_type__in=list(validation.KINDS)).first()
        if blob is None or not User.objects.filter(avatar_sha256=sha256).exists():
            raise Http404("No picture matches the given query.")
        etag = f'"{blob.sha256}"'
        if _matches(request.headers.get("If-None-Match", ""), etag):
            return _avatar_headers(HttpResponseNotModified(), blob, etag)
        response = _blob_response(blob, missing="No picture matches the given query.")
        return _avatar_headers(response, blob, etag)


AVATAR_CACHE_SECONDS = 365 * 24 * 3600  # the URL names the bytes: they never change


def _avatar_headers(response: HttpResponseBase, blob: Blob, etag: str) -> HttpResponseBase:
    response["ETag"] = etag
    # private: the answer needs a token (a shared cache must not serve it to anyone).
    response["Cache-Control"] = f"private, max-age={AVATAR_CACHE_SECONDS}, immutable"
    response["Vary"] = "Authorization"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response["Referrer-Policy"] = "no-referrer"
    if not isinstance(response, HttpResponseNotModified):
        response["Content-Type"] = blob.content_type
        kind = validation.KINDS[blob.content_type]
        response["Content-Disposition"] = f'inline; filename="avatar.{kind.extension}"'
    return response
