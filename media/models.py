from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Blob(models.Model):
    """One stored file, named by the sha256 of its bytes: the same content is kept once.

    An image's bytes have its type and size; any other file is `application/octet-stream` with
    no width or height (media.validation.FILE_CONTENT_TYPE).
    """

    sha256 = models.CharField(max_length=64, unique=True)
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=32)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.sha256


class Attachment(models.Model):
    """One upload by one user: per-upload metadata pointing at a shared Blob."""

    class Kind(models.TextChoices):
        IMAGE = "image"  # a PNG, JPEG, GIF or WebP that decodes (media.validation)
        FILE = "file"  # anything else, kept as it was sent and only ever offered as a download

    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="attachments")
    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.IMAGE)
    # The name as sent (at most 255 characters), and as shown and offered for download (media.names).
    original_name = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["uploader", "-id"], name="attachment_uploader_idx")]

    def __str__(self) -> str:
        return f"Attachment {self.pk} ({self.blob.sha256[:12]})"

    @property
    def url(self) -> str:
        return reverse("attachment-file", kwargs={"pk": self.pk})
