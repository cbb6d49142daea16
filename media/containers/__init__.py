"""Image containers walked on their bytes: metadata kept by allowlist, and frames counted.

Nothing here decodes pixels or re-encodes an image: segments (JPEG), chunks (PNG, WebP) and blocks
(GIF) are copied byte for byte or left out, so the image that is served is the image that was sent,
minus what could say where it was taken or by what. Each format keeps only what it needs to be
displayed as sent; everything else goes, known or unknown:

    EXIF    rebuilt from scratch with Orientation alone: no GPS IFD (wherever its pointer sits),
            no IFD1 (the thumbnail, a JPEG that may carry its own EXIF), no Exif IFD (MakerNote,
            serial numbers, times), no Make/Model. Orientation stays because viewers rotate by it.
    JPEG    JFIF (its thumbnail emptied), ICC profile, Adobe (colour transform), the EXIF above and
            the frame and scan segments; not XMP, MPF, IPTC, comments, other APPn, or anything after
            the end of the first image.
    PNG     the chunks of the PNG 3 and APNG specifications that draw the image, eXIf rebuilt, text
            chunks with the specification's predefined keywords (Title, Comment…), nothing after IEND;
            not XMP or ImageMagick's raw profiles in text chunks, C2PA, or private chunks.
    WebP    bitstream, alpha, animation and ICC chunks, EXIF rebuilt; not XMP, unknown chunks, or
            bytes past the RIFF size.
    GIF     image, graphic-control and plain-text blocks, the looping (NETSCAPE2.0/ANIMEXTS1.0) and
            ICC application extensions; not XMP or other application extensions, comments, or
            anything after the trailer.

A structure broken where the walker must rewrite it raises CorruptImage (the upload is refused).
Frames are counted here too (for the animation limits), and a PNG's image data is inflated to check
it (check_png_pixels) with nothing kept. One module per format; base.py holds what they share.
"""

from collections.abc import Callable
from pathlib import Path

from media.containers.base import CorruptImage, Write
from media.containers.gif import gif_frame_count, write_clean_gif
from media.containers.jpeg import write_clean_jpeg
from media.containers.png import check_png_pixels, png_frame_count, write_clean_png
from media.containers.webp import webp_canvas_size, webp_frame_count, write_clean_webp

__all__ = ["CorruptImage", "check_png_pixels", "frame_count", "webp_canvas_size", "write_clean"]

CLEANERS: dict[str, Callable[[Path, Write], None]] = {
    "JPEG": write_clean_jpeg,
    "PNG": write_clean_png,
    "WEBP": write_clean_webp,
    "GIF": write_clean_gif,
}


def write_clean(pillow_format: str, path: Path, write: Write) -> None:
    """Write the image at `path` (of that Pillow format) with only the metadata it needs. Raises CorruptImage."""
    CLEANERS[pillow_format](path, write)


def frame_count(pillow_format: str, path: Path, *, stop_after: int) -> int:
    """How many frames the image shows (1 for a still), counted up to `stop_after` + 1, nothing decoded."""
    if pillow_format == "GIF":
        return gif_frame_count(path, stop_after=stop_after)
    if pillow_format == "PNG":
        return png_frame_count(path, stop_after=stop_after)
    if pillow_format == "WEBP":
        return webp_frame_count(path)
    return 1
