import os

from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "media"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from PIL import Image

        from media import schema  # noqa: F401  (registers the ?token= scheme with drf-spectacular)

        # Pillow warns past this many pixels and refuses past twice as many, already when it
        # reads a header; media.validation turns the warning into a refusal too.
        Image.MAX_IMAGE_PIXELS = settings.UPLOAD_MAX_PIXELS
        # Pillow stores a decoded image in 16 MB blocks. glibc serves blocks that size from the
        # calling thread's malloc arena once its mmap threshold has risen past them, and a freed
        # block then stays in that arena: with 8 request threads each keeping one decode's worth,
        # 8 WebP checks of 39 MP in turn (one decode slot) left the process at 1.7 GB. Blocks of
        # 64 MB are above glibc's largest threshold (32 MB), so each is mmapped and returned to the
        # system when the image is closed: 830 MB peak for the same run (bench/upload_rss.py).
        # An operator's PILLOW_BLOCK_SIZE wins.
        if "PILLOW_BLOCK_SIZE" not in os.environ:
            Image.core.set_block_size(64 * 1024 * 1024)
