"""Reads of attachments beyond a one-liner."""

from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet, Sum

from accounts.models import User
from media import access
from media.models import Attachment


def unattached_attachments(*, created_before: datetime, uploader: User | None = None) -> QuerySet[Attachment]:
    """Uploads older than `created_before` that no message carries (never sent, or their message was
    deleted), oldest first: what cleanup_blobs --unattached-days and the automatic expiry delete."""
    attachments = Attachment.objects.filter(created_at__lt=created_before)
    if uploader is not None:
        attachments = attachments.filter(uploader=uploader)
    return attachments.filter(~Exists(access.carriers(OuterRef("pk")))).order_by("id")


def storage_used_by(user: User) -> int:
    """The bytes the user's uploads count against UPLOAD_QUOTA_BYTES: each upload its stored size,
    also when the same bytes are stored once for several uploads (by anyone)."""
    total = Attachment.objects.filter(uploader=user).aggregate(total=Sum("blob__size"))["total"]
    return int(total or 0)
