"""Run every stored blob through today's metadata cleaners, once after an upgrade that tightened them.

    manage.py reclean_blobs

Files stored before EXIF was rebuilt from an allowlist (GPS in IFD1, a thumbnail, MakerNote), before
GIFs were cleaned (XMP, comments, bytes after the trailer), or before PNG and WebP kept only the chunks
that draw the image, are rewritten: their attachments keep their ids and URLs and point at the cleaned
bytes (media.services.blob_reclean). A blob already clean is read and left alone, so running it again
changes nothing.
"""

from typing import Any

from django.core.management.base import BaseCommand

from media import services
from media.models import Blob


class Command(BaseCommand):
    help = "Rewrite stored blobs whose bytes today's metadata cleaners would change."

    def handle(self, *args: Any, **options: Any) -> None:
        changed = 0
        for blob_id, sha256 in Blob.objects.order_by("id").values_list("id", "sha256").iterator():
            cleaned = services.blob_reclean(blob_id=blob_id)
            if cleaned is not None:
                self.stdout.write(f"cleaned blob {sha256} -> {cleaned}")
                changed += 1
        self.stdout.write(self.style.SUCCESS(f"cleaned {changed} blob(s)"))
