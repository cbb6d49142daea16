from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts.models import User
from media import services, store
from media.models import Attachment
from tests.factories import UserFactory
from tests.media import images


@pytest.fixture
def outsider(db) -> User:
    return UserFactory.create(username="mallory", display_name="Mallory")


def upload(client: APIClient, data: bytes, name: str = "photo.png", content_type: str = "image/png"):
    return client.post("/api/attachments", {"file": SimpleUploadedFile(name, data, content_type)}, format="multipart")


def stored_files() -> list[Path]:
    return [path for _, path in store.iter_blob_files()]


@pytest.fixture
def make_attachment() -> Callable[..., Attachment]:
    """An attachment stored through the real service (no HTTP, so no upload throttle)."""

    def make(uploader: User, data: bytes | None = None, name: str = "photo.png") -> Attachment:
        return services.attachment_create(
            uploader=uploader, file=SimpleUploadedFile(name, data if data is not None else images.png())
        )

    return make


@pytest.fixture
def upload_temp_dir(settings, tmp_path) -> Path:
    """Django's upload temporary files go here, so tests can see that none are left behind."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder
