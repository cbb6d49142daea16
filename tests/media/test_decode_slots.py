"""At most UPLOAD_MAX_CONCURRENT_DECODES images decode at once in a process; a wait past
UPLOAD_DECODE_WAIT_SECONDS is a 503 with Retry-After."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import ImageFile

from media import validation
from tests.media import images
from tests.media.conftest import upload


def test_concurrent_decodes_never_exceed_the_setting(settings, tmp_path: Path, monkeypatch):
    # given: 6 threads checking images, each decode made slow and watched
    settings.UPLOAD_MAX_CONCURRENT_DECODES = 2
    files = []
    for index in range(6):
        path = tmp_path / f"{index}.webp"
        path.write_bytes(images.image_bytes("WEBP", color=(index, 0, 0)))
        files.append(path)
    running = peak = 0
    lock = threading.Lock()
    real_load = ImageFile.ImageFile.load

    def slow_load(image):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return real_load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", slow_load)
    errors: list[BaseException] = []

    def check(path: Path) -> None:
        try:
            validation.inspect_image(path, size=path.stat().st_size)
        except BaseException as error:
            errors.append(error)

    # when
    threads = [threading.Thread(target=check, args=(path,)) for path in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert errors == []
    assert peak == 2


@pytest.fixture
def only_slot_taken(settings) -> Iterator[None]:
    """One decode slot in the process, held, and no waiting for it."""
    settings.UPLOAD_MAX_CONCURRENT_DECODES = 1
    settings.UPLOAD_DECODE_WAIT_SECONDS = 0
    with validation.decode_slot():
        yield


def test_an_upload_that_finds_no_decode_slot_in_time_gets_503_with_retry_after(api_client, only_slot_taken):
    # when
    r = upload(api_client, images.webp())
    # then
    assert r.status_code == 503, r.content
    assert r.json() == {"detail": "Too many images are being checked right now; try again shortly."}
    assert int(r["Retry-After"]) > 0


def test_a_png_needs_no_decode_slot(api_client, only_slot_taken):
    # when: a PNG's pixels are checked scanline by scanline instead
    r = upload(api_client, images.png())
    # then
    assert r.status_code == 201, r.content


def test_a_webp_declaring_too_many_pixels_is_refused_before_pillow_opens_it(api_client, monkeypatch):
    # given: 40 bytes that declare a 16383 x 16383 canvas (Pillow would allocate two of them, 2 GB)
    vp8x = b"VP8X" + (10).to_bytes(4, "little") + b"\x00\x00\x00\x00" + (16382).to_bytes(3, "little") * 2
    data = b"RIFF" + (4 + len(vp8x)).to_bytes(4, "little") + b"WEBP" + vp8x

    def no_open(*args, **kwargs):
        raise AssertionError("Pillow opened the file")

    monkeypatch.setattr(validation.Image, "open", no_open)
    # when
    r = upload(api_client, data, name="bomb.webp")
    # then
    assert r.status_code == 400, r.content
    assert r.json() == {"file": ["The image has too many pixels: at most 40 megapixels are accepted."]}
