import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts.models import User
from chats import services as chat_services
from faults.infra import OwnS3
from media import services, store
from media.models import Attachment
from tests.factories import UserFactory
from tests.media import images

# Every test here runs on both stores (media.store): the local disk and an S3 bucket on a moto server
# of the session's own, unless marked local_disk (what only a disk has: X-Sendfile, fsync, rename) or
# bucket (what only a bucket has: its keys, its outages).
STORAGES = ("local", "s3")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "media_storage" in metafunc.fixturenames:
        if metafunc.definition.get_closest_marker("local_disk"):
            storages: tuple[str, ...] = ("local",)
        elif metafunc.definition.get_closest_marker("bucket"):
            storages = ("s3",)
        else:
            storages = STORAGES
        metafunc.parametrize("media_storage", storages, indirect=True)


TEST_BUCKET = "messenger-tests"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[OwnS3]:
    server = OwnS3(tmp_path_factory.mktemp("moto"))
    server.start()
    server.create_bucket(TEST_BUCKET)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def media_storage(request, settings, _uploads_in_tmp) -> str:
    """The store under test; with "s3", a folder (S3_PREFIX) of the test's own in the session's bucket."""
    if request.param == "s3":
        server: OwnS3 = request.getfixturevalue("s3_server")
        settings.MEDIA_STORAGE = "s3"
        settings.S3_BUCKET = TEST_BUCKET
        settings.S3_PREFIX = f"test-{uuid.uuid4().hex}/"
        settings.S3_ENDPOINT_URL = server.endpoint_url
        settings.S3_REGION = server.REGION
        settings.S3_ADDRESSING_STYLE = "path"
        settings.S3_ACCESS_KEY_ID = server.KEY_ID
        settings.S3_SECRET_ACCESS_KEY = server.SECRET_KEY
    return str(request.param)


@pytest.fixture
def outsider(db) -> User:
    return UserFactory.create(username="mallory", display_name="Mallory")


def upload(client: APIClient, data: bytes, name: str = "photo.png", content_type: str = "image/png"):
    return client.post("/api/attachments", {"file": SimpleUploadedFile(name, data, content_type)}, format="multipart")


def stored_sha256s() -> list[str]:
    """What the store holds, on either backend."""
    return [blob.sha256 for blob in store.iter_blobs()]


def stored_bytes(sha256: str) -> bytes:
    with closing(store.open_blob(sha256)) as stored:
        return stored.read()


def put_stray(data: bytes) -> str:
    """Bytes in the store that no Blob row names, as a crash between writing them and committing leaves."""
    with store.pending_file() as pending:
        pending.write(data)
        sha256 = pending.finish()
        store.commit(pending, sha256)
    return sha256


@pytest.fixture
def make_attachment() -> Callable[..., Attachment]:
    """An attachment stored through the real service (no HTTP, so no upload throttle)."""

    def make(uploader: User, data: bytes | None = None, name: str = "photo.png") -> Attachment:
        return services.attachment_create(
            uploader=uploader, file=SimpleUploadedFile(name, data if data is not None else images.png())
        )

    return make


@pytest.fixture
def shared(chat, user, make_attachment) -> Attachment:
    """An image `user` uploaded and posted in `chat` (where `other_user` is a member)."""
    attachment = make_attachment(user, images.png(), name="cat.png")
    chat_services.message_create(chat_id=chat.pk, sender=user, attachment_id=attachment.pk)
    return attachment


@pytest.fixture
def upload_temp_dir(settings, tmp_path) -> Path:
    """Django's upload temporary files go here, so tests can see that none are left behind."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder
