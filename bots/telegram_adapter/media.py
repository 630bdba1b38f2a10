"""Image facts Telegram's photo rules need: pixel size from the file header, and whether a photo would pass.

Pure (stdlib and `core` only); no PTB here.
"""

from __future__ import annotations

import struct

from core import Image

# Bot API sendPhoto: "The photo must be at most 10 MB in size. The photo's width and height must not
# exceed 10000 in total. Width and height ratio must be at most 20." Decimal MB, to stay on the safe side.
PHOTO_MAX_BYTES = 10_000_000
PHOTO_MAX_SIDES_SUM = 10_000
PHOTO_MAX_ASPECT_RATIO = 20

# JPEG start-of-frame markers carry the size; C4 (huffman), C8 (reserved) and CC (arithmetic) do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from a PNG, GIF, WebP or JPEG header; None when unknown or malformed."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return int(width), int(height)
        if data.startswith((b"GIF87a", b"GIF89a")):
            width, height = struct.unpack("<HH", data[6:10])
            return int(width), int(height)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: 24-bit canvas size minus one
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # lossy: 14-bit sizes after the start code
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20:21] == b"\x2f":  # lossless: 14-bit sizes minus one, bit-packed
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            index += 2
            continue
        (length,) = struct.unpack(">H", data[index + 2 : index + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return int(width), int(height)
        index += 2 + length
    return None


def fits_as_photo(image: Image) -> bool:
    """Whether Telegram would take `image` with sendPhoto; otherwise it goes as a document.

    GIFs go as documents so that animations stay animated; an image whose size cannot be read goes as a
    document too, since Telegram refuses photos it cannot decode.
    """
    if image.mime == "image/gif" or len(image.data) > PHOTO_MAX_BYTES:
        return False
    size = image_size(image.data)
    if size is None:
        return False
    small, large = sorted(size)
    return small > 0 and sum(size) <= PHOTO_MAX_SIDES_SUM and large <= PHOTO_MAX_ASPECT_RATIO * small
