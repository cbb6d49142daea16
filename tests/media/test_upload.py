"""POST /api/attachments: images judged by their bytes, refusals naming the reason."""

import hashlib
import io

import pytest
from PIL import ExifTags, Image
from rest_framework.throttling import ScopedRateThrottle

from media import store
from media.models import Attachment, Blob
from tests.media import images
from tests.media.conftest import stored_bytes, stored_sha256s, upload

ACCEPTED = [
    ("png", images.png, "image/png"),
    ("jpeg", images.jpeg, "image/jpeg"),
    ("gif", images.gif, "image/gif"),
    ("webp", images.webp, "image/webp"),
]


@pytest.mark.parametrize(("name", "build", "content_type"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_each_accepted_type_is_stored_with_its_real_type_and_size(api_client, user, name, build, content_type):
    # given
    data = build(size=(5, 3))
    # when
    r = upload(api_client, data, name=f"picture.{name}", content_type="application/octet-stream")
    # then
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["content_type"] == content_type
    assert (body["width"], body["height"]) == (5, 3)
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["url"] == f"/api/attachments/{body['id']}/file"
    assert set(body) == {
        "id", "url", "kind", "name", "content_type", "size", "width", "height", "sha256", "created_at"
    }  # fmt: skip
    assert (body["kind"], body["name"]) == ("image", f"picture.{name}")
    assert stored_bytes(body["sha256"]) == data
    assert Attachment.objects.get(pk=body["id"]).uploader == user


def test_declared_name_and_content_type_are_ignored(api_client):
    # given: PNG bytes announced as a GIF named .gif
    data = images.png()
    # when
    r = upload(api_client, data, name="cat.gif", content_type="image/gif")
    # then
    assert r.status_code == 201, r.content
    assert r.json()["content_type"] == "image/png"


# Bytes that are no image at all are a file (kind "file": tests/media/test_files.py); these claim an image.
@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (
            b"GIF89a<script>alert(document.cookie)</script>",
            "polyglot.gif",
            "The file is not a valid GIF image: it is truncated or corrupt.",
        ),
        (
            b"\xff\xd8\xff<html><script>alert(1)</script></html>",
            "x.jpg",
            "The file is not a valid JPEG image: it is truncated or corrupt.",
        ),
        (b"", "empty.png", "The submitted file is empty."),
    ],
    ids=["gif-header-then-script", "jpeg-header-then-html", "empty"],
)
def test_bytes_that_claim_an_image_but_are_none_are_refused_with_the_reason(api_client, data, name, reason):
    # when
    r = upload(api_client, data, name=name, content_type="image/png")
    # then
    assert r.status_code == 400, r.content
    assert r.json() == {"file": [reason]}
    assert Blob.objects.count() == 0
    assert stored_sha256s() == []


def test_truncated_png_is_refused_as_truncated_or_corrupt(api_client):
    # given
    whole = images.noisy_png((40, 40))
    # when
    r = upload(api_client, whole[: len(whole) // 2])
    # then
    assert r.status_code == 400, r.content
    assert r.json() == {"file": ["The file is not a valid PNG image: it is truncated or corrupt."]}


def test_png_header_on_garbage_is_refused(api_client):
    # given
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    # when
    r = upload(api_client, data)
    # then
    assert r.status_code == 400, r.content
    assert r.json() == {"file": ["The file is not a valid PNG image: it is truncated or corrupt."]}


def test_truncated_jpeg_is_refused(api_client):
    # given
    whole = images.image_bytes("JPEG", (64, 64), quality=95)
    # when
    r = upload(api_client, whole[: len(whole) - 200], name="x.jpg")
    # then
    assert r.status_code == 400, r.content
    assert "JPEG" in r.json()["file"][0]


@pytest.mark.parametrize(("width", "height"), [(7_000, 7_000), (100_000, 100_000)], ids=["49MP", "10GP"])
def test_pixel_bomb_is_refused_before_decoding(api_client, width, height):
    # given: a few hundred bytes that declare more than the 40 megapixel limit
    data = images.png_declaring(width, height)
    assert len(data) < 1000
    # when
    r = upload(api_client, data, name="bomb.png")
    # then
    assert r.status_code == 400, r.content
    assert r.json() == {"file": ["The image has too many pixels: at most 40 megapixels are accepted."]}


def test_pixel_limit_follows_the_setting(api_client, settings):
    # given
    settings.UPLOAD_MAX_PIXELS = 100
    # when
    r = upload(api_client, images.png(size=(11, 10)))
    # then
    assert r.status_code == 400, r.content
    assert "too many pixels" in r.json()["file"][0]


def test_file_over_the_size_limit_gets_413_and_leaves_no_temporary_file(api_client, settings, upload_temp_dir):
    # given
    settings.UPLOAD_MAX_BYTES = 1000
    data = images.noisy_png((30, 30))
    assert 1000 < len(data) < 64 * 1024
    # when
    r = upload(api_client, data)
    # then
    assert r.status_code == 413, r.content
    assert r.json() == {"file": ["The image is too large: at most 1000 bytes is accepted for an image."]}
    assert list(upload_temp_dir.iterdir()) == []
    assert list(store.iter_temp_files()) == []
    assert Blob.objects.count() == 0


def test_request_whose_content_length_is_over_the_limit_is_refused_before_parsing(
    api_client, settings, upload_temp_dir
):
    # given: the limit of any upload is the larger of the image's and the file's
    settings.UPLOAD_MAX_BYTES = 1000
    settings.FILE_MAX_BYTES = 1000
    data = images.noisy_png((200, 200))
    assert len(data) > 1000 + 64 * 1024
    # when
    r = upload(api_client, data)
    # then
    assert r.status_code == 413, r.content
    assert "too large" in r.json()["file"][0]
    assert list(upload_temp_dir.iterdir()) == []


def test_refused_and_accepted_uploads_leave_no_temporary_files(api_client, upload_temp_dir):
    # when
    refused = upload(api_client, images.png()[:20])
    accepted = upload(api_client, images.png())
    # then
    assert refused.status_code == 400, refused.content
    assert accepted.status_code == 201, accepted.content
    assert list(store.iter_temp_files()) == []
    assert list(upload_temp_dir.iterdir()) == []


def test_upload_without_a_file_is_refused(api_client):
    # when
    r = api_client.post("/api/attachments", {}, format="multipart")
    # then
    assert r.status_code == 400, r.content
    assert "file" in r.json()


def test_upload_needs_a_token(make_client):
    # when
    r = upload(make_client(None), images.png())
    # then
    assert r.status_code == 401, r.content


def test_uploads_are_throttled_with_retry_after(api_client, monkeypatch):
    # given
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"upload": "2/min"})
    # when
    answers = [upload(api_client, images.png(color=(i, 0, 0))) for i in range(3)]
    # then
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert int(answers[2]["Retry-After"]) > 0


WITH_GPS = [
    ("jpeg", images.jpeg_with_gps, "image/jpeg"),
    ("png", images.png_with_gps, "image/png"),
    ("webp", images.webp_with_gps, "image/webp"),
]


@pytest.mark.parametrize(("name", "build", "content_type"), WITH_GPS, ids=[w[0] for w in WITH_GPS])
def test_gps_is_removed_before_hashing_and_orientation_is_kept(api_client, name, build, content_type):
    # given
    original = build()
    with Image.open(io.BytesIO(original)) as sent:
        assert sent.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the test image really carries GPS
    # when
    r = upload(api_client, original, name=f"holiday.{name}", content_type=content_type)
    # then
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["content_type"] == content_type
    stored = stored_bytes(body["sha256"])
    assert body["sha256"] == hashlib.sha256(stored).hexdigest() != hashlib.sha256(original).hexdigest()
    assert body["size"] == len(stored)
    with Image.open(io.BytesIO(stored)) as image:
        exif = image.getexif()
        assert ExifTags.IFD.GPSInfo not in exif
        assert exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
        assert exif[ExifTags.Base.Orientation] == images.GPS_ORIENTATION
        assert ExifTags.Base.Make not in exif  # EXIF is rebuilt with Orientation alone (media.containers)
        assert "xmp" not in image.info and "XML:com.adobe.xmp" not in image.info
        image.load()
    assert b"GPSLatitude" not in stored
    assert b"adobe:ns:meta" not in stored


def test_png_text_that_is_not_location_is_kept(api_client):
    # when
    r = upload(api_client, images.png_with_gps())
    # then
    with Image.open(io.BytesIO(stored_bytes(r.json()["sha256"]))) as image:
        assert image.info["Comment"] == "kept"


def test_bytes_after_the_end_of_a_jpeg_are_not_stored(api_client):
    # given: a JPEG with an HTML payload appended after its end marker
    original = images.jpeg() + b"<html><script>alert(1)</script></html>"
    # when
    r = upload(api_client, original, name="x.jpg")
    # then
    assert r.status_code == 201, r.content
    stored = stored_bytes(r.json()["sha256"])
    assert stored == images.jpeg()


def test_bytes_after_the_end_of_a_png_are_not_stored(api_client):
    # given
    original = images.png() + b"<html><script>alert(1)</script></html>"
    # when
    r = upload(api_client, original)
    # then
    assert r.status_code == 201, r.content
    assert stored_bytes(r.json()["sha256"]) == images.png()
