"""manage.py cleanup_blobs: unreferenced blobs and stray files go; everything referenced stays."""

import io
import os
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from chats import services as chat_services
from media import store
from media.management.commands import cleanup_blobs
from media.models import Attachment, Blob
from tests.media import images
from tests.media.conftest import put_stray, stored_sha256s, upload


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("cleanup_blobs", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def kept_and_orphan(user, make_attachment):
    """Two blobs: one still referenced by an attachment, one whose only attachment is gone."""
    kept = make_attachment(user, images.png(color=(1, 1, 1))).blob
    orphan_attachment = make_attachment(user, images.png(color=(2, 2, 2)))
    orphan = orphan_attachment.blob
    orphan_attachment.delete()
    return kept, orphan


def age(path, seconds: int) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_dry_run_lists_unreferenced_blobs_and_deletes_nothing(kept_and_orphan):
    # given
    kept, orphan = kept_and_orphan
    # when
    output = run("--dry-run")
    # then
    assert f"would delete blob {orphan.sha256}" in output
    assert kept.sha256 not in output
    assert Blob.objects.count() == 2
    assert store.exists(orphan.sha256)


def test_cleanup_deletes_unreferenced_blobs_and_their_files_only(kept_and_orphan):
    # given
    kept, orphan = kept_and_orphan
    # when
    output = run()
    # then
    assert f"deleted blob {orphan.sha256}" in output
    assert list(Blob.objects.values_list("sha256", flat=True)) == [kept.sha256]
    assert not store.exists(orphan.sha256)
    assert store.exists(kept.sha256)
    assert Attachment.objects.filter(blob=kept).exists()


@pytest.mark.local_disk  # file times set by hand; test_a_stray_blob_goes_once_older_than_the_grace_period is both
def test_cleanup_deletes_old_stray_files_and_temporary_files_but_not_young_ones(user, make_attachment):
    # given
    kept = make_attachment(user).blob
    stray_old, stray_young = "ab" * 32, "cd" * 32
    for sha, seconds in ((stray_old, 7200), (stray_young, 10)):
        path = store.blob_path(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left behind")
        age(path, seconds)
    old_temp = store.temp_dir() / "upload-old.part"
    old_temp.write_bytes(b"partial")
    age(old_temp, 7200)
    young_temp = store.temp_dir() / "upload-young.part"
    young_temp.write_bytes(b"in progress")
    # when
    output = run("--grace-minutes", "60")
    # then
    assert not store.exists(stray_old)
    assert not old_temp.exists()
    assert store.exists(stray_young)
    assert young_temp.exists()
    assert store.exists(kept.sha256)
    assert "deleted 0 unreferenced blob(s) and 2 stray file(s)" in output


def test_a_stray_blob_goes_once_older_than_the_grace_period(user, make_attachment, monkeypatch):
    # given: bytes in the store that no Blob names, written just now
    kept = make_attachment(user).blob
    stray = put_stray(b"left behind by a crash")
    assert "0 stray file(s)" in run("--grace-minutes", "60")
    assert store.exists(stray)
    # when: two hours later
    later = time.time() + 7200
    monkeypatch.setattr(cleanup_blobs.time, "time", lambda: later)
    output = run("--grace-minutes", "60")
    # then
    assert f"deleted stray file {store.relative_path(stray)}" in output
    assert not store.exists(stray)
    assert stored_sha256s() == [kept.sha256]


def test_an_unreferenced_blob_uploaded_again_after_cleanup_is_stored_again(api_client, kept_and_orphan):
    # given
    _, orphan = kept_and_orphan
    run()
    # when
    r = upload(api_client, images.png(color=(2, 2, 2)))
    # then
    assert r.status_code == 201, r.content
    assert r.json()["sha256"] == orphan.sha256
    assert store.exists(orphan.sha256)


@pytest.fixture
def sent_unsent_and_deleted(chat, user, make_attachment):
    """Three uploads a week old: one in a message, one never sent, one whose message was deleted."""
    sent = make_attachment(user, images.png(color=(3, 3, 3)))
    chat_services.message_create(chat_id=chat.pk, sender=user, attachment_id=sent.pk)
    unsent = make_attachment(user, images.png(color=(4, 4, 4)))
    deleted = make_attachment(user, images.png(color=(5, 5, 5)))
    message = chat_services.message_create(chat_id=chat.pk, sender=user, attachment_id=deleted.pk).message
    chat_services.message_delete(chat_id=chat.pk, message_id=message.pk, actor=user)
    Attachment.objects.update(created_at=timezone.now() - timedelta(days=7))
    return sent, unsent, deleted


def test_unattached_days_dry_run_lists_unsent_uploads_and_their_blobs(sent_unsent_and_deleted):
    # given
    sent, unsent, deleted = sent_unsent_and_deleted
    # when
    output = run("--dry-run", "--unattached-days", "3")
    # then
    assert f"would delete attachment {unsent.pk} " in output
    assert f"would delete blob {unsent.blob.sha256}" in output
    assert f"would delete blob {deleted.blob.sha256}" in output
    assert sent.blob.sha256 not in output
    assert Attachment.objects.count() == 3
    assert len(stored_sha256s()) == 3


def test_unattached_days_deletes_uploads_no_message_carries_then_their_files(sent_unsent_and_deleted):
    # given
    sent, _, _ = sent_unsent_and_deleted
    # when
    run("--unattached-days", "3")
    # then
    assert list(Attachment.objects.values_list("pk", flat=True)) == [sent.pk]
    assert stored_sha256s() == [sent.blob.sha256]
    assert Blob.objects.count() == 1


def test_unattached_days_keeps_recent_unsent_uploads(user, make_attachment):
    # given: just uploaded, about to be sent
    fresh = make_attachment(user)
    # when
    run("--unattached-days", "3")
    # then
    assert Attachment.objects.filter(pk=fresh.pk).exists()
    assert store.exists(fresh.blob.sha256)
