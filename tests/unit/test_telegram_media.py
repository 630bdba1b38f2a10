"""Telegram's photo rules on our side: image sizes read from headers, and what must go as a document."""

from __future__ import annotations

import struct

import pytest

from bots.telegram_adapter.media import fits_as_photo, image_size
from core import Image
from tests.fakes.images import gif_bytes, png_bytes


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def webp_lossy(width: int, height: int) -> bytes:
    frame = b"\x00\x00\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    return b"RIFF" + struct.pack("<I", 4 + 8 + len(frame)) + b"WEBPVP8 " + struct.pack("<I", len(frame)) + frame


def webp_extended(width: int, height: int) -> bytes:
    body = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + 8 + len(body)) + b"WEBPVP8X" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (png_bytes(40, 30), (40, 30)),
        (gif_bytes(), (1, 1)),
        (jpeg(1920, 1080), (1920, 1080)),
        (webp_lossy(300, 200), (300, 200)),
        (webp_extended(5000, 20), (5000, 20)),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", None),  # a JPEG cut before its frame header
        (b"not an image at all", None),
    ],
)
def test_image_size_reads_the_header(data: bytes, size: tuple[int, int] | None) -> None:
    assert image_size(data) == size


@pytest.mark.parametrize(
    ("image", "is_photo"),
    [
        (Image(png_bytes(40, 30), "image/png"), True),
        (Image(jpeg(4000, 3000), "image/jpeg"), True),
        (Image(png_bytes(2000, 100), "image/png"), True),  # ratio 20: the limit itself is allowed
        (Image(png_bytes(2100, 100), "image/png"), False),  # ratio 21
        (Image(jpeg(6000, 4001), "image/jpeg"), False),  # width + height over 10,000
        (Image(png_bytes(4, 4) + b"\x00" * 10_000_000, "image/png"), False),  # over 10 MB
        (Image(gif_bytes(), "image/gif"), False),  # stays animated as a document
        (Image(b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"), False),  # size unknown
    ],
)
def test_images_telegram_would_refuse_as_photos_go_as_documents(image: Image, is_photo: bool) -> None:
    assert fits_as_photo(image) is is_photo
