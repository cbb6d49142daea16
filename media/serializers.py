from typing import Any

from rest_framework import serializers

from media.models import Attachment
from messenger.rendering import datetime_text


class AttachmentSerializer(serializers.ModelSerializer[Attachment]):
    """An upload. `kind` "image": a PNG, JPEG, GIF or WebP, with its pixel size; "file": anything else,
    `application/octet-stream` with no width or height, served as a download. `name`: the file name sent,
    made safe (media.names)."""

    url = serializers.CharField(read_only=True)
    kind = serializers.ChoiceField(choices=Attachment.Kind.choices, read_only=True)
    name = serializers.CharField(read_only=True)
    content_type = serializers.CharField(source="blob.content_type", read_only=True)
    size = serializers.IntegerField(source="blob.size", read_only=True)
    width = serializers.IntegerField(source="blob.width", read_only=True, allow_null=True)
    height = serializers.IntegerField(source="blob.height", read_only=True, allow_null=True)
    sha256 = serializers.CharField(source="blob.sha256", read_only=True)

    class Meta:
        model = Attachment
        fields = ["id", "url", "kind", "name", "content_type", "size", "width", "height", "sha256", "created_at"]
        read_only_fields = fields

    def to_representation(self, attachment: Attachment) -> dict[str, Any]:
        return attachment_data(attachment)


def attachment_data(attachment: Attachment) -> dict[str, Any]:
    """AttachmentSerializer's output, built directly (see messenger.rendering)."""
    blob = attachment.blob
    return {
        "id": attachment.pk,
        "url": attachment.url,
        "kind": attachment.kind,
        "name": attachment.name,
        "content_type": blob.content_type,
        "size": blob.size,
        "width": blob.width,
        "height": blob.height,
        "sha256": blob.sha256,
        "created_at": datetime_text(attachment.created_at),
    }


class AttachmentUploadSerializer(serializers.Serializer[Attachment]):
    file = serializers.FileField(allow_empty_file=False, use_url=False)
