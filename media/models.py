from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Blob(models.Model):
    """One stored file, named by the sha256 of its bytes: the same content is kept once."""

    sha256 = models.CharField(max_length=64, unique=True)
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.sha256


class Attachment(models.Model):
    """One upload by one user: per-upload metadata pointing at a shared Blob."""

    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="attachments")
    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments")
    original_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["uploader", "-id"], name="attachment_uploader_idx")]

    def __str__(self) -> str:
        return f"Attachment {self.pk} ({self.blob.sha256[:12]})"

    @property
    def url(self) -> str:
        return reverse("attachment-file", kwargs={"pk": self.pk})
