"""What is served carries no location: EXIF rebuilt from an allowlist, XMP and strangers dropped, on the bytes.

Each hostile file is built with Pillow or by hand (tests/media/images.py), uploaded, fetched back
from its URL, and read with Pillow and a byte search for what the original carried.
"""

import hashlib
import io
from collections.abc import Callable

import pytest
from PIL import ExifTags, Image

from tests.media import images
from tests.media.conftest import upload

LOCATION_BYTES = [images.SECRET_PLACE, b"GPSLatitude", b"adobe:ns:meta", b"XMP DataXMP"]

FORMATS = ["JPEG", "PNG", "WEBP"]
GPS_PLACES: dict[str, Callable[[], bytes]] = {
    "gps-in-ifd0": images.gps_exif_bytes,
    "gps-in-ifd1": images.exif_with_gps_in_ifd1,
}


def served(api_client, data: bytes, name: str) -> bytes:
    r = upload(api_client, data, name=name, content_type="application/octet-stream")
    assert r.status_code == 201, r.content
    body = r.json()
    fetched = api_client.get(body["url"])
    assert fetched.status_code == 200, fetched.content
    content = b"".join(fetched.streaming_content)
    assert hashlib.sha256(content).hexdigest() == body["sha256"]
    assert len(content) == body["size"]
    return content


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("place", GPS_PLACES)
def test_served_exif_has_no_gps_wherever_the_pointer_was_and_keeps_orientation(api_client, fmt, place):
    # given
    original = images.hostile(fmt, GPS_PLACES[place]())
    with Image.open(io.BytesIO(original)) as sent:
        exif = sent.getexif()
        assert exif.get_ifd(ExifTags.IFD.GPSInfo) or ExifTags.IFD.GPSInfo in exif.get_ifd(ExifTags.IFD.IFD1)
    assert images.SECRET_PLACE in original
    # when
    content = served(api_client, original, name=f"x.{fmt.lower()}")
    # then
    with Image.open(io.BytesIO(content)) as image:
        exif = image.getexif()
        assert dict(exif) == {ExifTags.Base.Orientation: images.GPS_ORIENTATION}
        assert exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
        assert exif.get_ifd(ExifTags.IFD.IFD1) == {}
        assert exif.get_ifd(ExifTags.IFD.Exif) == {}
        assert "xmp" not in image.info and "XML:com.adobe.xmp" not in image.info
    for needle in LOCATION_BYTES:
        assert needle not in content
    assert pixels(content) == pixels(original)


def test_exif_without_orientation_is_dropped_whole(api_client):
    # given
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N"}
    original = images.image_bytes("JPEG", (8, 8), exif=exif)
    # when
    content = served(api_client, original, name="x.jpg")
    # then
    assert b"Exif\x00\x00" not in content
    assert b"TestCam" not in content


def test_the_same_picture_with_different_metadata_is_one_blob(api_client):
    # given: one picture, GPS in IFD0 in one copy and in IFD1 in the other
    first = images.hostile("PNG", images.gps_exif_bytes())
    second = images.hostile("PNG", images.exif_with_gps_in_ifd1())
    assert first != second
    # when
    a = upload(api_client, first)
    b = upload(api_client, second)
    # then
    assert a.status_code == b.status_code == 201, (a.content, b.content)
    assert a.json()["sha256"] == b.json()["sha256"]


def test_jpeg_comments_and_foreign_app_segments_are_not_served(api_client):
    # given: a COM segment and an APP5 segment after SOI
    plain = images.jpeg((8, 8))
    comment = b"\xff\xfe" + (len(images.SECRET_PLACE) + 2).to_bytes(2, "big") + images.SECRET_PLACE
    app5 = b"\xff\xe5" + (len(images.SECRET_PLACE) + 2).to_bytes(2, "big") + images.SECRET_PLACE
    original = plain[:2] + comment + app5 + plain[2:]
    # when
    content = served(api_client, original, name="x.jpg")
    # then
    assert images.SECRET_PLACE not in content
    assert pixels(content) == pixels(plain)


def test_gif_keeps_its_frames_and_loop_but_not_xmp_comments_strangers_or_what_follows_the_trailer(api_client):
    # given
    original = images.hostile_gif(frames=3, trailing=b"<html><script>alert(1)</script></html>")
    assert images.SECRET_PLACE in original and b"XMP DataXMP" in original
    # when
    content = served(api_client, original, name="x.gif")
    # then
    assert content.endswith(b"\x3b")
    assert b"<html>" not in content
    for needle in LOCATION_BYTES:
        assert needle not in content
    with Image.open(io.BytesIO(content)) as image, Image.open(io.BytesIO(original)) as sent:
        assert getattr(image, "n_frames", 1) == getattr(sent, "n_frames", 1) == 3
        assert image.info["loop"] == 0
        assert "comment" not in image.info
        for index in range(3):
            image.seek(index)
            sent.seek(index)
            assert image.convert("RGB").tobytes() == sent.convert("RGB").tobytes()


def test_a_plain_gif_is_stored_as_sent(api_client):
    # given
    original = images.gif((5, 3))
    # when
    content = served(api_client, original, name="x.gif")
    # then
    assert content == original


def test_webp_bytes_past_the_riff_size_are_not_served(api_client):
    # given
    plain = images.webp((6, 4))
    # when
    content = served(api_client, plain + b"<html>" + images.SECRET_PLACE, name="x.webp")
    # then
    assert content == plain


def test_png_private_chunks_and_location_text_go_but_spec_keywords_stay(api_client):
    # given: a private chunk (lower-case first letter: ancillary) before IEND
    plain = images.hostile("PNG", images.gps_exif_bytes())
    private = images.png_chunk(b"prVt", images.SECRET_PLACE)
    original = plain[:-12] + private + plain[-12:]
    # when
    content = served(api_client, original, name="x.png")
    # then
    assert images.SECRET_PLACE not in content
    assert b"Raw profile type" not in content
    with Image.open(io.BytesIO(content)) as image:
        image.load()
        assert "Raw profile type exif" not in image.info
