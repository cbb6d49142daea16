"""Animations are refused past UPLOAD_MAX_FRAMES frames or UPLOAD_MAX_ANIMATION_PIXELS in all."""

import io
import time

import pytest
from PIL import Image

from media.models import Blob
from tests.media import images
from tests.media.conftest import stored_sha256s, upload


def animation(fmt: str, frames: int, size: tuple[int, int] = (10, 10)) -> bytes:
    pictures = [Image.new("RGB", size, (i * 7 % 256, 80, 160)) for i in range(frames)]
    buffer = io.BytesIO()
    pictures[0].save(buffer, fmt, save_all=True, append_images=pictures[1:], duration=50, loop=0)
    return buffer.getvalue()


def test_a_tiny_gif_of_3000_frames_on_a_huge_screen_is_refused_quickly(api_client):
    # given: 69 KB that a browser would compose into 3,000 frames of 39.7 megapixels
    data = images.gif_declaring(6300, 6300, 3000)
    assert len(data) < 70_000
    # when
    started = time.monotonic()
    r = upload(api_client, data, name="bomb.gif")
    elapsed = time.monotonic() - started
    # then
    assert r.status_code == 400, r.content
    assert r.json() == {
        "file": [
            "The animation is too large: at most 400 megapixels in all its frames (frames x width x height) "
            "are accepted; this one has at least 11 frames of 39.69 megapixels."
        ]
    }
    assert elapsed < 2
    assert Blob.objects.count() == 0
    assert stored_sha256s() == []


def test_an_animation_within_the_limits_is_accepted(api_client):
    # given: 10 frames of 39.69 MP is 396.9 MP, under the 400 MP default
    data = images.gif_declaring(6300, 6300, 10)
    # when
    r = upload(api_client, data, name="ok.gif")
    # then
    assert r.status_code == 201, r.content


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_too_many_frames_are_refused_in_each_animated_format(api_client, settings, fmt):
    # given
    settings.UPLOAD_MAX_FRAMES = 5
    # when
    refused = upload(api_client, animation(fmt, 6), name=f"x.{fmt.lower()}")
    accepted = upload(api_client, animation(fmt, 5), name=f"x.{fmt.lower()}")
    # then
    assert refused.status_code == 400, refused.content
    assert refused.json() == {"file": ["The animation has too many frames: at most 5 are accepted."]}
    assert accepted.status_code == 201, accepted.content


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_frames_times_pixels_follow_the_setting_in_each_animated_format(api_client, settings, fmt):
    # given: 4 frames of 10 x 10 = 400 pixels in all
    settings.UPLOAD_MAX_ANIMATION_PIXELS = 399
    # when
    r = upload(api_client, animation(fmt, 4), name=f"x.{fmt.lower()}")
    # then
    assert r.status_code == 400, r.content
    assert r.json()["file"][0].startswith("The animation is too large: at most 0.000399 megapixels")


def test_a_still_image_counts_as_one_frame(api_client, settings):
    # given
    settings.UPLOAD_MAX_ANIMATION_PIXELS = 12
    # when
    r = upload(api_client, images.png(size=(4, 3)))
    # then
    assert r.status_code == 201, r.content
