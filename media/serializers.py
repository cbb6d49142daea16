from rest_framework import serializers

from media.models import Attachment


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


class AttachmentUploadSerializer(serializers.Serializer[Attachment]):
    file = serializers.FileField(allow_empty_file=False, use_url=False)
