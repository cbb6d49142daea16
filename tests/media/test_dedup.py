"""The same bytes are stored once, however many times and by whomever they are uploaded."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from media import services, store, validation
from media.models import Attachment, Blob
from tests.media import images
from tests.media.conftest import stored_bytes, stored_sha256s, upload


def test_same_image_uploaded_twice_is_one_blob_and_one_file(api_client):
    # given
    data = images.png()
    # when
    first = upload(api_client, data, name="a.png")
    second = upload(api_client, data, name="b.png")
    # then
    assert first.status_code == second.status_code == 201, (first.content, second.content)
    assert first.json()["id"] != second.json()["id"]
    assert first.json()["sha256"] == second.json()["sha256"]
    assert Blob.objects.count() == 1
    assert Attachment.objects.count() == 2
    assert stored_sha256s()[0] == first.json()["sha256"]
    assert len(stored_sha256s()) == 1


def test_same_image_uploaded_by_two_users_is_one_blob_and_one_file(make_client, user, other_user):
    # given
    data = images.webp()
    # when
    mine = upload(make_client(user), data, name="mine.webp")
    theirs = upload(make_client(other_user), data, name="theirs.webp")
    # then
    assert mine.status_code == theirs.status_code == 201, (mine.content, theirs.content)
    assert Blob.objects.count() == 1
    assert len(stored_sha256s()) == 1
    assert {a.uploader_id for a in Attachment.objects.all()} == {user.pk, other_user.pk}


def test_same_photo_with_location_uploaded_twice_is_stored_once(api_client):
    # given
    data = images.jpeg_with_gps()
    # when
    first = upload(api_client, data, name="1.jpg")
    second = upload(api_client, data, name="2.jpg")
    # then
    assert first.json()["sha256"] == second.json()["sha256"]
    assert len(stored_sha256s()) == 1


def test_different_images_are_different_blobs(api_client):
    # when
    upload(api_client, images.png(color=(1, 2, 3)))
    upload(api_client, images.png(color=(3, 2, 1)))
    # then
    assert Blob.objects.count() == 2
    assert len(stored_sha256s()) == 2


@pytest.mark.local_disk  # tests/media/test_object_store.py checks a bucket's keys
def test_stored_files_are_sharded_by_their_sha256(api_client):
    # when
    sha = upload(api_client, images.gif()).json()["sha256"]
    # then
    path = store.blob_path(sha)
    assert path.relative_to(store.root()).parts == (sha[:2], sha[2:4], sha)
    assert path.is_file()


def test_identical_upload_losing_the_insert_race_shares_the_winners_blob(user, other_user):
    # given: the other upload committed its Blob after this one looked and found none
    data = images.png()
    winner = services.attachment_create(uploader=other_user, file=SimpleUploadedFile("a.png", data))
    facts = services.BlobFacts.of_image(validation.ImageInfo(kind=validation.PNG, width=4, height=3))
    # when
    blob = services.blob_create(winner.blob.sha256, len(data), facts)
    # then
    assert blob.pk == winner.blob_id
    assert Blob.objects.count() == 1


def test_a_missing_file_is_restored_by_the_next_identical_upload(api_client):
    # given
    data = images.png()
    sha = upload(api_client, data).json()["sha256"]
    store.delete(sha)
    # when
    r = upload(api_client, data)
    # then
    assert r.status_code == 201, r.content
    assert stored_bytes(sha) == data
