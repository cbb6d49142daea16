"""Identical uploads at the same moment, with real threads and transactions: one Blob, one file.

On MariaDB and on SQLite (see tests/chats/test_concurrency.py).
"""

import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from media import services, store
from media.models import Attachment, Blob
from tests.factories import UserFactory
from tests.media import images
from tests.media.conftest import stored_bytes, stored_sha256s

pytestmark = pytest.mark.django_db(transaction=True)


def test_identical_uploads_racing_store_one_blob_and_one_file():
    # given
    uploaders = [UserFactory.create() for _ in range(6)]
    data = images.jpeg_with_gps()
    barrier = threading.Barrier(len(uploaders))
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            services.attachment_create(uploader=uploaders[index], file=SimpleUploadedFile(f"{index}.jpg", data))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(uploaders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then
    assert not errors, errors
    assert Blob.objects.count() == 1
    assert Attachment.objects.count() == len(uploaders)
    assert len(stored_sha256s()) == 1
    assert list(store.iter_temp_files()) == []


def test_cleanup_racing_uploads_of_the_same_bytes_never_leaves_an_attachment_without_its_file():
    # given: an unreferenced blob, which cleanup wants to delete while others upload the same bytes
    uploaders = [UserFactory.create() for _ in range(4)]
    data = images.png(color=(9, 9, 9))
    orphan = services.attachment_create(uploader=uploaders[0], file=SimpleUploadedFile("o.png", data))
    orphan.delete()
    blob_id = Blob.objects.get().pk
    barrier = threading.Barrier(len(uploaders) + 1)
    errors: list[BaseException] = []

    def upload(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            services.attachment_create(uploader=uploaders[index], file=SimpleUploadedFile(f"{index}.png", data))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    def cleanup() -> None:
        try:
            barrier.wait(timeout=30)
            services.blob_delete_if_unreferenced(blob_id=blob_id)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(uploaders))]
    threads.append(threading.Thread(target=cleanup))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then
    assert not errors, errors
    assert Attachment.objects.count() == len(uploaders)
    blob = Blob.objects.get()
    assert stored_bytes(blob.sha256) == data
