"""A per-user storage quota (413 {"detail"}), and uploads no message carries expiring by themselves."""

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from chats import services as chat_services
from media import services, store
from media.models import Attachment, Blob
from tests.factories import UserFactory
from tests.media import images
from tests.media.conftest import stored_sha256s, upload

# The module's own starting value: what a fresh server process has.
FRESH_PROCESS = services._last_global_sweep


@pytest.fixture(autouse=True)
def global_sweep_fresh(monkeypatch):
    """Each test starts with the process's everyone-sweep as a fresh server process has it."""
    monkeypatch.setattr(services, "_last_global_sweep", FRESH_PROCESS)


def test_a_fresh_process_on_a_machine_just_booted_sweeps_everyones_expired_uploads(
    api_client, make_attachment, monkeypatch
):
    # given: a machine up for 5 s (time.monotonic() counts from about boot), a stale upload of another user
    monkeypatch.setattr(services, "time", SimpleNamespace(monotonic=lambda: 5.0))  # this module's clock only
    stale = make_attachment(UserFactory.create(), images.png(color=(14, 14, 14)))
    age(stale, hours=25)
    # when: the process's first upload
    upload(api_client, images.png(color=(15, 15, 15)))
    # then
    assert not Attachment.objects.filter(pk=stale.pk).exists()


def age(*attachments: Attachment, hours: float) -> None:
    Attachment.objects.filter(pk__in=[a.pk for a in attachments]).update(
        created_at=timezone.now() - timedelta(hours=hours)
    )


def test_an_upload_past_the_quota_is_413_with_a_detail_and_stores_nothing(api_client, settings):
    # given: a quota that holds two small PNGs
    first, second, third = (images.png(color=(i, 9, 9)) for i in range(3))
    settings.UPLOAD_QUOTA_BYTES = len(first) + len(second)
    assert upload(api_client, first).status_code == 201
    assert upload(api_client, second).status_code == 201
    # when
    r = upload(api_client, third)
    # then
    assert r.status_code == 413, r.content
    assert set(r.json()) == {"detail"}
    assert r.json()["detail"] == (
        f"Your uploads already use {len(first) + len(second)} bytes of your {len(first) + len(second)} bytes; "
        f"this file ({len(third)} bytes) does not fit. Uploads that no message carries are deleted 24 hours "
        "after they were sent, which frees their room."
    )
    assert Blob.objects.count() == 2
    assert len(stored_sha256s()) == 2


def test_the_same_bytes_uploaded_again_count_again(api_client, settings):
    # given: room for one copy only
    data = images.png()
    settings.UPLOAD_QUOTA_BYTES = len(data) + 10
    assert upload(api_client, data).status_code == 201
    # when
    r = upload(api_client, data)
    # then: stored once, but each upload counts toward its uploader
    assert r.status_code == 413, r.content


def test_another_users_uploads_do_not_count(api_client, settings, other_user, make_attachment):
    # given: someone else has used far more than the quota
    data = images.png(color=(1, 2, 3))
    make_attachment(other_user, images.noisy_png((40, 40)))
    settings.UPLOAD_QUOTA_BYTES = len(data)
    # when
    r = upload(api_client, data)
    # then
    assert r.status_code == 201, r.content


def test_a_quota_of_zero_is_no_quota(api_client, settings):
    # given
    settings.UPLOAD_QUOTA_BYTES = 0
    # when
    r = upload(api_client, images.png())
    # then
    assert r.status_code == 201, r.content


def test_an_old_unsent_upload_is_deleted_on_the_next_upload_with_its_file(api_client, user, make_attachment):
    # given: an upload 25 hours old that was never sent
    stale = make_attachment(user, images.png(color=(7, 7, 7)))
    age(stale, hours=25)
    # when
    r = upload(api_client, images.png(color=(8, 8, 8)))
    # then
    assert r.status_code == 201, r.content
    assert not Attachment.objects.filter(pk=stale.pk).exists()
    assert not Blob.objects.filter(pk=stale.blob_id).exists()
    assert not store.exists(stale.blob.sha256)


def test_sent_recent_and_shared_uploads_survive_the_sweep(api_client, chat, user, other_user, make_attachment):
    # given: old and sent; old and unsent but its bytes shared by another (recent) upload; recent and unsent
    sent = make_attachment(user, images.png(color=(1, 1, 1)))
    chat_services.message_create(chat_id=chat.pk, sender=user, attachment_id=sent.pk)
    shared_bytes = images.png(color=(2, 2, 2))
    old_copy = make_attachment(user, shared_bytes)
    recent_copy = make_attachment(other_user, shared_bytes)
    recent = make_attachment(user, images.png(color=(3, 3, 3)))
    age(sent, old_copy, hours=48)
    # when
    r = upload(api_client, images.png(color=(4, 4, 4)))
    # then
    assert r.status_code == 201, r.content
    remaining = set(Attachment.objects.values_list("pk", flat=True))
    assert {sent.pk, recent_copy.pk, recent.pk} <= remaining
    assert old_copy.pk not in remaining
    assert store.exists(recent_copy.blob.sha256)
    assert store.exists(sent.blob.sha256)


def test_a_message_deleted_long_after_its_upload_frees_the_upload_at_the_next_sweep(api_client, chat, user):
    # given: an upload sent, then its message deleted, two days later
    r = upload(api_client, images.png(color=(5, 5, 5)))
    attachment = Attachment.objects.get(pk=r.json()["id"])
    message = chat_services.message_create(chat_id=chat.pk, sender=user, attachment_id=attachment.pk).message
    chat_services.message_delete(chat_id=chat.pk, message_id=message.pk, actor=user)
    age(attachment, hours=48)
    # when
    upload(api_client, images.png(color=(6, 6, 6)))
    # then
    assert not Attachment.objects.filter(pk=attachment.pk).exists()


def test_everyones_expired_uploads_are_swept_by_anyones_upload(api_client, make_attachment):
    # given: a user who never uploads again
    gone = UserFactory.create()
    stale = make_attachment(gone, images.png(color=(9, 9, 9)))
    age(stale, hours=25)
    # when
    upload(api_client, images.png(color=(10, 10, 10)))
    # then
    assert not Attachment.objects.filter(pk=stale.pk).exists()


def test_the_everyone_sweep_runs_at_most_every_few_minutes_per_process(api_client, make_attachment):
    # given: a sweep just ran
    upload(api_client, images.png(color=(11, 11, 11)))
    stale = make_attachment(UserFactory.create(), images.png(color=(12, 12, 12)))
    age(stale, hours=25)
    # when
    upload(api_client, images.png(color=(13, 13, 13)))
    # then: still there until the next global sweep is due
    assert Attachment.objects.filter(pk=stale.pk).exists()


def test_a_sweep_deletes_a_bounded_batch(user, make_attachment, monkeypatch):
    # given: the everyone-sweep not due (it would add a batch of its own)
    monkeypatch.setattr(services, "_last_global_sweep", time.monotonic())
    stale = [make_attachment(user, images.png(color=(20 + i, 0, 0))) for i in range(services.SWEEP_BATCH + 3)]
    age(*stale, hours=25)
    # when
    deleted = services.attachments_sweep_expired(uploader=user)
    # then
    assert deleted == services.SWEEP_BATCH
    assert Attachment.objects.count() == 3


def test_expired_uploads_free_the_quota_they_held(api_client, user, settings, make_attachment):
    # given: the quota full of an upload never sent, a day and more ago
    stale = make_attachment(user, images.png(color=(30, 30, 30)))
    settings.UPLOAD_QUOTA_BYTES = stale.blob.size + 10
    age(stale, hours=25)
    # when
    r = upload(api_client, images.png(color=(31, 31, 31)))
    # then
    assert r.status_code == 201, r.content


def test_zero_hours_keeps_unsent_uploads(api_client, user, settings, make_attachment):
    # given
    settings.UPLOAD_UNATTACHED_HOURS = 0
    stale = make_attachment(user, images.png(color=(40, 40, 40)))
    age(stale, hours=1000)
    # when
    upload(api_client, images.png(color=(41, 41, 41)))
    # then
    assert Attachment.objects.filter(pk=stale.pk).exists()
