"""The security suite's pure pieces (security/cases.py): its hostile files are what its rows claim,
and its checks would see a location that survived (the suite itself runs with `make security`)."""

import io
import struct

import pytest
from PIL import ExifTags, Image

from bench.upload_rss import solid_image
from security import cases
from tests.media import images


def gif_screen_and_frames(data: bytes) -> tuple[tuple[int, int], int]:
    """The logical screen and the number of image descriptors, walking the GIF's blocks by hand."""
    assert data[:6] == b"GIF89a"
    width, height, flags = struct.unpack("<HHB", data[6:11])
    at = 13 + ((3 << ((flags & 0x07) + 1)) if flags & 0x80 else 0)
    frames = 0

    def skip_sub_blocks(at: int) -> int:
        while data[at]:
            at += data[at] + 1
        return at + 1

    while data[at] != 0x3B:
        if data[at] == 0x21:  # an extension: label, then sub-blocks
            at = skip_sub_blocks(at + 2)
        else:
            assert data[at] == 0x2C
            frames += 1
            local = data[at + 9]
            at += 10 + ((3 << ((local & 0x07) + 1)) if local & 0x80 else 0)
            at = skip_sub_blocks(at + 1)  # the LZW minimum code size, then the data
    assert at == len(data) - 1, "nothing after the trailer"
    return (width, height), frames


def test_the_gif_bomb_claims_a_39_7_megapixel_screen_and_3000_frames_in_under_70_kb():
    # given
    data = images.gif_declaring(6300, 6300, 3000)
    # when
    screen, frames = gif_screen_and_frames(data)
    # then
    assert screen == (6300, 6300)
    assert screen[0] * screen[1] > 39_600_000
    assert frames == 3000
    assert len(data) < 70_000


def test_the_big_png_is_39_megapixels_in_under_200_kb():
    # when
    data = solid_image(39, "PNG")
    # then
    width, height = Image.open(io.BytesIO(data)).size
    assert width * height >= 38_900_000
    assert len(data) < 200_000


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_the_location_check_sees_gps_in_ifd0_and_ifd1_and_xmp_in_the_files_sent(fmt):
    # when
    left = cases.location_left(images.hostile(fmt, images.exif_with_gps_in("IFD0", "IFD1")))
    # then
    assert left == ["GPS IFD", "IFD1", "XMP exif:GPS", "the GPS text"]


def test_exif_with_gps_in_both_ifds_has_a_gps_ifd_behind_each_pointer():
    # given
    exif = Image.Exif()
    # when
    exif.load(images.exif_with_gps_in("IFD0", "IFD1")[6:])
    # then
    assert exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
    assert ExifTags.IFD.GPSInfo in exif.get_ifd(ExifTags.IFD.IFD1)
    assert exif[ExifTags.Base.Orientation] == images.GPS_ORIENTATION


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_the_location_check_sees_gps_behind_ifd1_in_the_files_sent(fmt):
    # when
    left = cases.location_left(images.hostile(fmt, images.exif_with_gps_in_ifd1()))
    # then
    assert "IFD1" in left
    assert "the GPS text" in left


def test_the_location_check_passes_a_clean_image():
    assert cases.location_left(images.jpeg()) == []


def test_runs_counts_repeats_in_order():
    assert cases.runs([401, 401, 429, 429, 429]) == "401 x 2, 429 x 3"
    assert cases.runs([]) == ""


def test_external_hosts_names_other_hosts_only():
    html = (
        '<script src="/static/swagger-ui.js"></script><link href="http://127.0.0.1:8000/x.css">'
        '<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>'
    )
    assert cases.external_hosts(html) == {"cdn.jsdelivr.net"}


def test_percentile_takes_the_rank():
    assert cases.percentile([float(n) for n in range(1, 101)], 0.99) == 100.0
