"""Delete blobs no attachment refers to (and nobody's avatar), with their files; and files the database does not know.

    manage.py cleanup_blobs --dry-run                 # list what would go
    manage.py cleanup_blobs                           # delete it
    manage.py cleanup_blobs --unattached-days 7       # first drop uploads no message carries

A Blob loses its last Attachment when, for example, its uploader's account is deleted; with
--unattached-days, uploads that no message carries (never sent, or their message was deleted)
go first once that old, so deleted images leave the disk too. The server does the same by itself
after UPLOAD_UNATTACHED_HOURS, swept on later uploads (media.services.attachments_sweep_expired,
same selector and service): this command is for what that has not reached yet, and for stray files.
Stray files (a crash between writing a file and committing its row) and temporary files of
interrupted uploads are deleted only once older than --grace-minutes, so an upload in
progress is never touched. The store is MEDIA_STORAGE's (files under UPLOADS_DIR, or objects in the
bucket, media.store); temporary files are always on the local disk.
"""

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.models import User
from media import selectors, services, store
from media.models import Attachment, Blob


class Command(BaseCommand):
    help = "Delete blobs (and their files) that no attachment references, and stray files in the store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="List what would be deleted; delete nothing.")
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=60,
            help="Leave stray and temporary files younger than this alone (default 60).",
        )
        parser.add_argument(
            "--unattached-days",
            type=int,
            default=None,
            help="Also delete attachments older than this that no message carries (default: keep them).",
        )

    def handle(
        self, *args: Any, dry_run: bool, grace_minutes: int, unattached_days: int | None, **options: Any
    ) -> None:
        verb = "would delete" if dry_run else "deleted"
        attachments = blobs = freed = 0
        doomed: set[int] = set()  # attachments a dry run pretends to delete
        if unattached_days is not None:
            cutoff_time = timezone.now() - timedelta(days=unattached_days)
            unattached = selectors.unattached_attachments(created_before=cutoff_time).select_related("blob")
            for attachment in unattached.iterator():
                if dry_run or services.attachment_delete_if_unattached(attachment_id=attachment.pk):
                    self.stdout.write(f"{verb} attachment {attachment.pk} (blob {attachment.blob.sha256})")
                    attachments += 1
                    doomed.add(attachment.pk)
        still_used = Attachment.objects.filter(blob=OuterRef("pk")).exclude(pk__in=doomed if dry_run else [])
        avatar = User.objects.filter(avatar_sha256=OuterRef("sha256"))  # media.avatars
        unreferenced = Blob.objects.filter(~Exists(still_used), ~Exists(avatar)).order_by("id")
        for blob in unreferenced.iterator():
            if dry_run or services.blob_delete_if_unreferenced(blob_id=blob.pk):
                self.stdout.write(f"{verb} blob {blob.sha256} ({blob.size} bytes)")
                blobs += 1
                freed += blob.size

        cutoff = time.time() - grace_minutes * 60
        files = 0
        for stored in store.iter_blobs():
            stray = stored.modified < cutoff and not Blob.objects.filter(sha256=stored.sha256).exists()
            if stray and (dry_run or store.delete(stored.sha256)):
                freed += stored.size
                self.stdout.write(f"{verb} stray file {store.relative_path(stored.sha256)}")
                files += 1
        for path in store.iter_temp_files():
            if _older_than(path, cutoff):
                freed += _remove(path, dry_run)
                self.stdout.write(f"{verb} temporary file {path.name}")
                files += 1

        summary = f"{verb} {blobs} unreferenced blob(s) and {files} stray file(s), {freed} bytes"
        if unattached_days is not None:
            summary = f"{verb} {attachments} unattached attachment(s); " + summary
        self.stdout.write(self.style.SUCCESS(summary) if not dry_run else summary)


def _older_than(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def _remove(path: Path, dry_run: bool) -> int:
    try:
        size = path.stat().st_size
        if not dry_run:
            path.unlink()
    except FileNotFoundError:
        return 0
    return size
