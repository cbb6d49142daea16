"""Tiny images built with Pillow for the tests, and hand-made hostile files."""

import io
import random
import struct
import zlib

from PIL import ExifTags, Image, PngImagePlugin

GPS_ORIENTATION = 6  # "rotate 90° clockwise": must survive location removal


def image_bytes(fmt: str, size: tuple[int, int] = (4, 3), color: tuple[int, int, int] = (200, 30, 30), **save) -> bytes:
    image = Image.new("RGB", size, color)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def png(size: tuple[int, int] = (4, 3), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    return image_bytes("PNG", size, color)


def noisy_png(size: tuple[int, int]) -> bytes:
    """A PNG that does not compress: about 3 bytes per pixel."""
    image = Image.frombytes("RGB", size, random.Random(size[0]).randbytes(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (4, 3)) -> bytes:
    return image_bytes("JPEG", size)


def gif(size: tuple[int, int] = (4, 3), **save) -> bytes:
    return image_bytes("GIF", size, **save)


def webp(size: tuple[int, int] = (4, 3)) -> bytes:
    return image_bytes("WEBP", size)


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = GPS_ORIENTATION
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (52.0, 31.0, 12.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (13.0, 24.0, 0.0),
    }
    return exif


XMP_WITH_GPS = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="52,31.2N"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def jpeg_with_gps() -> bytes:
    return image_bytes("JPEG", (16, 8), exif=gps_exif(), xmp=XMP_WITH_GPS)


def png_with_gps() -> bytes:
    image = Image.new("RGB", (6, 4), (10, 200, 10))
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP_WITH_GPS.decode())
    info.add_text("Comment", "kept")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", exif=gps_exif(), pnginfo=info)
    return buffer.getvalue()


def webp_with_gps() -> bytes:
    return image_bytes("WEBP", (6, 4), exif=gps_exif(), xmp=XMP_WITH_GPS)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG of a few hundred bytes that declares width x height pixels."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    pixels = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b"")
