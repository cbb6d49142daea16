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
