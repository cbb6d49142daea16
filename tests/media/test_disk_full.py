"""A full disk: an upload that cannot be written is a JSON 507 that leaves nothing behind, half or
whole; bytes the store already holds are recorded without a write, so re-uploading them works."""

import errno
import os
import tempfile
from typing import Any

import pytest
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from media import store
from media.models import Attachment, Blob
from tests.media import images
from tests.media.conftest import stored_sha256s, upload


class FullDiskFile:
    """A store's temporary file on a disk with `room` bytes left: writes past it fail with ENOSPC."""

    def __init__(self, real: Any, room: int) -> None:
        self._real = real
        self.room = room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self._real.write(data[: self.room])  # the disk takes what fits: a half file
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return int(self._real.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture
def full_disk(monkeypatch):
    """The uploads' file system has 10 bytes left."""
    real = tempfile.NamedTemporaryFile

    def named_temporary_file(*args: Any, **kwargs: Any) -> FullDiskFile:
        return FullDiskFile(real(*args, **kwargs), room=10)

    monkeypatch.setattr(store.tempfile, "NamedTemporaryFile", named_temporary_file)


def temporary_files() -> list[str]:
    folder = store.root() / store.TEMP_DIR_NAME
    return os.listdir(folder) if folder.is_dir() else []


def test_an_upload_the_full_disk_cannot_hold_is_507_json_and_leaves_no_row_and_no_file(api_client, full_disk):
    # when
    r = upload(api_client, images.png((64, 64)))
    # then
    assert r.status_code == 507, r.content
    assert r["Content-Type"] == "application/json"
    assert r.json() == {"detail": "The server has no room to store this file right now."}
    assert Blob.objects.count() == 0 and Attachment.objects.count() == 0
    assert stored_sha256s() == [] and temporary_files() == []


def test_bytes_already_stored_upload_again_while_the_disk_is_full(api_client, monkeypatch):
    # given: stored while there was room
    data = images.png((64, 64))
    first = upload(api_client, data, name="a.png")
    assert first.status_code == 201, first.content
    stored = stored_sha256s()
    real = tempfile.NamedTemporaryFile
    monkeypatch.setattr(store.tempfile, "NamedTemporaryFile", lambda *a, **k: FullDiskFile(real(*a, **k), room=0))
    # when
    again = upload(api_client, data, name="b.png")
    # then: recorded against the stored bytes, nothing written
    assert again.status_code == 201, again.content
    assert again.json()["sha256"] == first.json()["sha256"]
    assert Blob.objects.count() == 1 and Attachment.objects.count() == 2
    assert stored_sha256s() == stored and temporary_files() == []


@pytest.mark.local_disk  # the fsync and rename of a file put in place
def test_a_full_disk_found_at_fsync_is_507_and_leaves_no_file(api_client, monkeypatch):
    # given: the writes were buffered, the flush to disk fails (delayed allocation)
    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", fsync)
    # when
    r = upload(api_client, images.png((32, 32)))
    # then
    assert r.status_code == 507, r.content
    assert Blob.objects.count() == 0 and Attachment.objects.count() == 0
    assert stored_sha256s() == [] and temporary_files() == []


@pytest.mark.local_disk  # the fsync and rename of a file put in place
def test_a_full_disk_when_the_file_is_put_in_place_rolls_the_rows_back(api_client, monkeypatch):
    # given: no room for a new shard folder
    def replace(source: Any, destination: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "replace", replace)
    # when
    r = upload(api_client, images.png((32, 32)))
    # then
    assert r.status_code == 507, r.content
    assert Blob.objects.count() == 0 and Attachment.objects.count() == 0
    assert stored_sha256s() == [] and temporary_files() == []


@pytest.fixture
def full_upload_temp_dir(monkeypatch, upload_temp_dir):
    """FILE_UPLOAD_TEMP_DIR's file system is full: the spooled upload's writes fail past 10 bytes."""
    real = TemporaryFileUploadHandler.receive_data_chunk

    def receive_data_chunk(self: TemporaryFileUploadHandler, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > 10:
            real(self, raw_data[: max(0, 10 - start)], start)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, raw_data, start)

    monkeypatch.setattr(TemporaryFileUploadHandler, "receive_data_chunk", receive_data_chunk)
    return upload_temp_dir


def test_an_upload_whose_spool_disk_is_full_is_received_in_memory_and_stored(api_client, full_upload_temp_dir):
    # when: the uploads' disk still has room
    r = upload(api_client, images.png((64, 64)))
    # then
    assert r.status_code == 201, r.content
    assert len(stored_sha256s()) == 1
    assert list(full_upload_temp_dir.iterdir()) == []


def test_bytes_already_stored_upload_again_when_both_disks_are_full(api_client, monkeypatch, upload_temp_dir):
    # given
    data = images.png((64, 64))
    assert upload(api_client, data, name="a.png").status_code == 201
    real_receive = TemporaryFileUploadHandler.receive_data_chunk

    def receive_data_chunk(self: TemporaryFileUploadHandler, raw_data: bytes, start: int) -> bytes | None:
        real_receive(self, raw_data[:1], start)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(TemporaryFileUploadHandler, "receive_data_chunk", receive_data_chunk)
    real_temporary = tempfile.NamedTemporaryFile
    monkeypatch.setattr(
        store.tempfile, "NamedTemporaryFile", lambda *a, **k: FullDiskFile(real_temporary(*a, **k), room=0)
    )
    # when
    again = upload(api_client, data, name="b.png")
    # then
    assert again.status_code == 201, again.content
    assert Blob.objects.count() == 1 and Attachment.objects.count() == 2
    assert list(upload_temp_dir.iterdir()) == [] and temporary_files() == []


def test_new_bytes_when_both_disks_are_full_are_507(api_client, full_disk, full_upload_temp_dir):
    # when
    r = upload(api_client, images.png((64, 64)))
    # then
    assert r.status_code == 507, r.content
    assert Attachment.objects.count() == 0 and Blob.objects.count() == 0
    assert list(full_upload_temp_dir.iterdir()) == [] and stored_sha256s() == [] and temporary_files() == []


def test_another_os_error_is_still_a_server_error_not_a_full_disk(api_client, monkeypatch):
    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(store.os, "fsync", fsync)
    api_client.raise_request_exception = False
    # when
    r = api_client.post("/api/attachments", {"file": _png_file()}, format="multipart")
    # then
    assert r.status_code == 500
    assert temporary_files() == []


def _png_file():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("x.png", images.png((16, 16)), "image/png")


def test_an_upload_whose_spool_file_cannot_even_be_created_is_received_in_memory(api_client, monkeypatch):
    # given: no room for a new file in FILE_UPLOAD_TEMP_DIR
    from django.core.files import uploadhandler

    def no_room(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(uploadhandler, "TemporaryUploadedFile", no_room)
    # when
    r = upload(api_client, images.png((64, 64)))
    # then
    assert r.status_code == 201, r.content
    assert len(stored_sha256s()) == 1
