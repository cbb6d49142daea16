"""A PNG's image data is checked by inflating it scanline by scanline (media.containers.check_png_pixels):
accepted and refused as a full decode would, holding ~1 MB instead of the frame."""

import io

import pytest
from PIL import Image

from tests.media import images
from tests.media.conftest import upload

CORRUPT = {"file": ["The file is not a valid PNG image: it is truncated or corrupt."]}


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_every_mode_pillow_writes_is_accepted(api_client, mode):
    # given
    buffer = io.BytesIO()
    Image.new(mode, (37, 23)).save(buffer, "PNG")
    # when
    r = upload(api_client, buffer.getvalue())
    # then
    assert r.status_code == 201, r.content


@pytest.mark.parametrize(("width", "height"), [(5, 3), (1, 1), (9, 17)])
def test_an_interlaced_png_is_accepted(api_client, width, height):
    # given
    data = images.interlaced_png(width, height)
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # Pillow decodes it too
    # when
    r = upload(api_client, data)
    # then
    assert r.status_code == 201, r.content
    assert (r.json()["width"], r.json()["height"]) == (width, height)


def test_an_interlaced_png_missing_its_last_scanlines_is_refused(api_client):
    # given
    whole = images.interlaced_png(9, 17)
    header_end = 8 + 25
    short = images.png_from_scanlines(9, 17, 2, b"\x00" * 50, interlaced=True)
    assert short[:header_end] == whole[:header_end]
    # when
    r = upload(api_client, short)
    # then
    assert r.status_code == 400, r.content
    assert r.json() == CORRUPT


def test_an_unknown_filter_type_is_refused_as_pillow_refuses_it(api_client):
    # given: grey 4 x 3, the second scanline with filter type 5
    data = images.png_from_scanlines(4, 3, 0, b"\x00abcd\x05abcd\x00abcd")
    with pytest.raises(OSError), Image.open(io.BytesIO(data)) as image:
        image.load()
    # when
    r = upload(api_client, data)
    # then
    assert r.status_code == 400, r.content
    assert r.json() == CORRUPT


def test_image_data_that_is_not_zlib_is_refused(api_client):
    # given
    header = images.png_from_scanlines(4, 3, 0, b"")[:33]
    data = header + images.png_chunk(b"IDAT", b"not zlib at all") + images.png_chunk(b"IEND", b"")
    # when
    r = upload(api_client, data)
    # then
    assert r.status_code == 400, r.content
    assert r.json() == CORRUPT


def test_a_tall_one_pixel_wide_png_is_checked_quickly(api_client):
    # given: 4 million scanlines of one pixel each
    buffer = io.BytesIO()
    Image.new("L", (1, 4_000_000)).save(buffer, "PNG")
    # when
    r = upload(api_client, buffer.getvalue())
    # then
    assert r.status_code == 201, r.content
