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


SECRET_PLACE = b"SECRETPLACE"  # written into every hostile GPS block: a byte search finds any copy


def exif_with_gps_in(*ifds: str, orientation: int = GPS_ORIENTATION) -> bytes:
    """EXIF (with the `Exif\\0\\0` prefix) whose GPS pointer sits in each of `ifds` ("IFD0", "IFD1":
    the thumbnail's IFD), by hand.

    IFD0: Orientation (and GPSInfo). IFD1, always there: GPSInfo or nothing. Each pointer leads to a
    GPS IFD of its own with GPSLatitudeRef "N" and a GPSProcessingMethod naming SECRET_PLACE.
    Little-endian, as phones write it.
    """
    method = b"ASCII\x00\x00\x00" + SECRET_PLACE
    in_ifd0, in_ifd1 = "IFD0" in ifds, "IFD1" in ifds
    ifd0_at = 8
    ifd1_at = ifd0_at + 2 + 12 * (1 + in_ifd0) + 4
    gps0_at = ifd1_at + 2 + 12 * in_ifd1 + 4
    gps1_at = gps0_at + 30 * in_ifd0
    method_at = gps1_at + 30 * in_ifd1

    def entry(tag: int, kind: int, count: int, value: int) -> bytes:
        return struct.pack("<HHII", tag, kind, count, value)

    def gps_ifd() -> bytes:
        latitude_ref = struct.pack("<HHI", 0x0001, 2, 2) + b"N\x00\x00\x00"
        return struct.pack("<H", 2) + latitude_ref + entry(0x001B, 7, len(method), method_at) + struct.pack("<I", 0)

    orientation_entry = struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    ifd0 = struct.pack("<H", 1 + in_ifd0) + orientation_entry
    ifd0 += (entry(0x8825, 4, 1, gps0_at) if in_ifd0 else b"") + struct.pack("<I", ifd1_at)
    ifd1 = struct.pack("<H", int(in_ifd1)) + (entry(0x8825, 4, 1, gps1_at) if in_ifd1 else b"") + struct.pack("<I", 0)
    gps = (gps_ifd() if in_ifd0 else b"") + (gps_ifd() if in_ifd1 else b"")
    tiff = b"II\x2a\x00" + struct.pack("<I", ifd0_at) + ifd0 + ifd1 + gps + method
    assert len(tiff) == method_at + len(method)
    return b"Exif\x00\x00" + tiff


def exif_with_gps_in_ifd1(orientation: int = GPS_ORIENTATION) -> bytes:
    """EXIF whose GPS pointer sits in IFD1 only (see exif_with_gps_in)."""
    return exif_with_gps_in("IFD1", orientation=orientation)


def gps_exif_bytes() -> bytes:
    """gps_exif() (GPS in IFD0) with a GPSProcessingMethod naming SECRET_PLACE, as bytes."""
    exif = gps_exif()
    exif[ExifTags.IFD.GPSInfo] = {
        **exif[ExifTags.IFD.GPSInfo],
        ExifTags.GPS.GPSProcessingMethod: b"ASCII\x00\x00\x00" + SECRET_PLACE,
    }
    return exif.tobytes()


def hostile(fmt: str, exif: bytes, size: tuple[int, int] = (6, 4)) -> bytes:
    """A JPEG, PNG or WebP carrying `exif` and XMP with GPS (PNG: in an iTXt chunk)."""
    image = Image.new("RGB", size, (10, 120, 200))
    buffer = io.BytesIO()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP_WITH_GPS.decode())
        info.add_text("Raw profile type exif", "exif\n  20\n" + SECRET_PLACE.hex())
        image.save(buffer, "PNG", exif=exif, pnginfo=info)
    else:
        image.save(buffer, fmt, exif=exif, xmp=XMP_WITH_GPS, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def gif_xmp_extension(xmp: bytes) -> bytes:
    """XMP as GIF carries it: an application extension "XMP DataXMP", the packet raw, then the
    258-byte "magic trailer" that lets a sub-block reader land on the terminator."""
    return b"\x21\xff\x0bXMP DataXMP" + xmp + b"\x01" + bytes(range(255, -1, -1)) + b"\x00"


def gif_comment_extension(text: bytes) -> bytes:
    return b"\x21\xfe" + bytes([len(text)]) + text + b"\x00"


def gif_application_extension(identifier: bytes, data: bytes) -> bytes:
    return b"\x21\xff\x0b" + identifier + bytes([len(data)]) + data + b"\x00"


def hostile_gif(*, frames: int = 2, trailing: bytes = b"") -> bytes:
    """An animated, looping GIF with XMP (GPS), a comment and a stranger's application extension
    before its first image, and `trailing` bytes after its trailer."""
    pictures = [Image.new("RGB", (8, 6), (40 * i % 256, 100, 50)) for i in range(frames)]
    buffer = io.BytesIO()
    pictures[0].save(buffer, "GIF", save_all=True, append_images=pictures[1:], loop=0, duration=100)
    data = buffer.getvalue()
    screen_flags = data[10]
    first_block = 13 + (3 << ((screen_flags & 0x07) + 1) if screen_flags & 0x80 else 0)
    injected = (
        gif_xmp_extension(XMP_WITH_GPS)
        + gif_comment_extension(b"shot at " + SECRET_PLACE)
        + gif_application_extension(b"TRACKER1.0\x00", SECRET_PLACE)
    )
    assert data.endswith(b"\x3b")
    return data[:first_block] + injected + data[first_block:] + trailing


def gif_declaring(width: int, height: int, frames: int) -> bytes:
    """A GIF of a `width` x `height` screen with `frames` frames of 1x1 pixel: a few bytes each.

    The shape of an animation bomb: tiny on the wire, `frames` x `width` x `height` pixels in a
    browser that keeps every composed frame.
    """
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    loop = gif_application_extension(b"NETSCAPE2.0", b"\x01\x00\x00")
    frame = (
        b"\x21\xf9\x04\x04\x01\x00\x00\x00"  # graphic control: delay 1/100 s, do not dispose
        + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
        + b"\x02\x02\x4c\x01\x00"  # LZW: code size 2, one sub-block (clear, index 1, end)
    )  # fmt: skip
    return screen + loop + frame * frames + b"\x3b"


def png_from_scanlines(width: int, height: int, colour_type: int, raw: bytes, *, interlaced: bool = False) -> bytes:
    """A PNG of 8-bit samples whose IDAT holds `raw`, the filtered scanlines as given."""
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 1 if interlaced else 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def interlaced_png(width: int, height: int) -> bytes:
    """An Adam7-interlaced RGB PNG (Pillow writes none), every pass's scanlines unfiltered."""
    raw = b""
    for x0, y0, dx, dy in (
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ):
        columns = (width - x0 + dx - 1) // dx if width > x0 else 0
        rows = (height - y0 + dy - 1) // dy if height > y0 else 0
        if columns:
            raw += (b"\x00" + bytes([x0 * 30, y0 * 30, 99]) * columns) * rows
    return png_from_scanlines(width, height, 2, raw, interlaced=True)
