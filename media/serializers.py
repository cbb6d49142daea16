from typing import Any

from rest_framework import serializers

from media.models import Attachment
from messenger.rendering import datetime_text


class AttachmentSerializer(serializers.ModelSerializer[Attachment]):
    url = serializers.CharField(read_only=True)
    content_type = serializers.CharField(source="blob.content_type", read_only=True)
    size = serializers.IntegerField(source="blob.size", read_only=True)
    width = serializers.IntegerField(source="blob.width", read_only=True)
    height = serializers.IntegerField(source="blob.height", read_only=True)
    sha256 = serializers.CharField(source="blob.sha256", read_only=True)

    class Meta:
        model = Attachment
        fields = ["id", "url", "content_type", "size", "width", "height", "sha256", "created_at"]
        read_only_fields = fields

    def to_representation(self, attachment: Attachment) -> dict[str, Any]:
        return attachment_data(attachment)


def attachment_data(attachment: Attachment) -> dict[str, Any]:
    """AttachmentSerializer's output, built directly (see messenger.rendering)."""
    blob = attachment.blob
    return {
        "id": attachment.pk,
        "url": attachment.url,
        "content_type": blob.content_type,
        "size": blob.size,
        "width": blob.width,
        "height": blob.height,
        "sha256": blob.sha256,
        "created_at": datetime_text(attachment.created_at),
    }


class AttachmentUploadSerializer(serializers.Serializer[Attachment]):
    file = serializers.FileField(allow_empty_file=False, use_url=False)
