"""MEDIA_STORAGE=s3: what only the bucket has (its keys, its outages); the rest of tests/media runs on it too."""

import io
import time

import pytest
from django.conf import settings
from django.core.management import call_command

from bench.procs import free_port
from faults.infra import OwnS3
from media import services, store
from media.management.commands import cleanup_blobs
from media.models import Attachment, Blob
from messenger.exceptions import StorageUnavailable
from tests.media import images
from tests.media.conftest import TEST_BUCKET, stored_sha256s, upload


def test_the_bytes_are_served_with_their_length(api_client, shared):
    # when (on both stores: a bucket's body cannot tell its length, the Blob row can)
    r = api_client.get(shared.url)
    # then
    assert r.status_code == 200, r.content
    assert r["Content-Length"] == str(shared.blob.size)
    assert len(b"".join(r.streaming_content)) == shared.blob.size


@pytest.mark.bucket
def test_a_blob_is_one_object_keyed_by_its_sha256_under_the_prefix(api_client, s3_server: OwnS3):
    # when: the same bytes twice
    first = upload(api_client, images.png(), name="a.png").json()["sha256"]
    second = upload(api_client, images.png(), name="b.png").json()["sha256"]
    # then
    assert first == second
    prefix = settings.S3_PREFIX
    keys = [key for key in s3_server.keys(TEST_BUCKET) if key.startswith(prefix)]
    assert keys == [f"{prefix}{first[:2]}/{first[2:4]}/{first}"]
    assert not (store.root() / store.relative_path(first)).exists()  # nothing on the local disk


@pytest.mark.bucket
def test_behind_nginx_a_bucket_blob_is_still_streamed_by_the_server(api_client, shared, settings):
    # given: X-Accel-Redirect can only send files from the local disk
    settings.SENDFILE_HEADER = "X-Accel-Redirect"
    # when
    r = api_client.get(shared.url)
    # then
    assert r.status_code == 200, r.content
    assert "X-Accel-Redirect" not in r
    assert r["Content-Type"] == "image/png"
    assert r["ETag"] == f'"{shared.blob.sha256}"'
    assert len(b"".join(r.streaming_content)) == shared.blob.size


@pytest.mark.bucket
def test_an_object_gone_from_the_bucket_is_404(api_client, shared, s3_server: OwnS3):
    # given
    key = settings.S3_PREFIX + store.relative_path(shared.blob.sha256)
    s3_server.client().delete_object(Bucket=TEST_BUCKET, Key=key)
    # when
    r = api_client.get(shared.url)
    # then
    assert r.status_code == 404, r.content


@pytest.mark.bucket
def test_an_upload_while_the_bucket_cannot_be_reached_is_503_and_records_nothing(api_client, settings):
    # given: nothing listens there
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    # when
    r = upload(api_client, images.png())
    # then
    assert r.status_code == 503, r.content
    assert r["Retry-After"]
    assert "file store" in r.json()["detail"]
    assert Blob.objects.count() == 0 and Attachment.objects.count() == 0
    assert list(store.iter_temp_files()) == []


@pytest.mark.bucket
def test_a_delete_the_bucket_refuses_keeps_the_blob_row(user, make_attachment, settings):
    # given: an upload no message carries, then the bucket goes away
    attachment = make_attachment(user)
    blob_id = attachment.blob_id
    attachment.delete()
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    # when
    with pytest.raises(StorageUnavailable):
        services.blob_delete_if_unreferenced(blob_id=blob_id)
    # then: the row stays, for cleanup_blobs to find once the bucket is back
    assert Blob.objects.filter(pk=blob_id).exists()


@pytest.mark.bucket
def test_cleanup_blobs_leaves_keys_that_are_not_blobs_alone(user, make_attachment, s3_server: OwnS3, monkeypatch):
    # given: another application's object in the same folder, older than any grace period
    kept = make_attachment(user).blob
    stranger = f"{settings.S3_PREFIX}ab/cd/readme.txt"
    s3_server.client().put_object(Bucket=TEST_BUCKET, Key=stranger, Body=b"not ours")
    later = time.time() + 7200
    monkeypatch.setattr(cleanup_blobs.time, "time", lambda: later)
    # when
    call_command("cleanup_blobs", "--grace-minutes", "60", stdout=io.StringIO())
    # then
    assert stored_sha256s() == [kept.sha256]
    assert stranger in s3_server.keys(TEST_BUCKET)
