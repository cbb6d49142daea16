"""At most UPLOAD_MAX_CONCURRENT_DECODES images decode at once in a process; a wait past
UPLOAD_DECODE_WAIT_SECONDS is a 503 with Retry-After."""

import threading
import time
from pathlib import Path

from PIL import ImageFile

from media import validation
from tests.media import images
from tests.media.conftest import upload


def test_concurrent_decodes_never_exceed_the_setting(settings, tmp_path: Path, monkeypatch):
    # given: 6 threads checking images, each decode made slow and watched
    settings.UPLOAD_MAX_CONCURRENT_DECODES = 2
    files = []
    for index in range(6):
        path = tmp_path / f"{index}.png"
        path.write_bytes(images.png(color=(index, 0, 0)))
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


def test_an_upload_that_finds_no_decode_slot_in_time_gets_503_with_retry_after(api_client, settings):
    # given: the only slot held
    settings.UPLOAD_MAX_CONCURRENT_DECODES = 1
    settings.UPLOAD_DECODE_WAIT_SECONDS = 0
    with validation.decode_slot():
        # when
        r = upload(api_client, images.png())
    # then
    assert r.status_code == 503, r.content
    assert r.json() == {"detail": "Too many images are being checked right now; try again shortly."}
    assert int(r["Retry-After"]) > 0
    assert upload(api_client, images.png()).status_code == 201
