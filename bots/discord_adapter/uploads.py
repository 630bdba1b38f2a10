"""Images made to fit Discord's upload limit: kept when small enough, else re-encoded and scaled down.

CPU-bound (Pillow): call `fit_image` through `asyncio.to_thread`. Imports Pillow and `core`, not discord.
"""

from __future__ import annotations

import io
import logging
import warnings

from PIL import Image as Pillow
from PIL import UnidentifiedImageError

from core import Image

log = logging.getLogger(__name__)

JPEG_QUALITIES = (90, 75, 60)
SCALE_STEP = 0.7  # each round keeps 70 % of the width and height, about half the pixels
MIN_SIDE_PIXELS = 64  # below this a picture is no longer worth sending
MAX_DECODE_PIXELS = 64_000_000  # refuse to decode more than this (a decompression bomb, not a picture)


def fit_image(image: Image, limit_bytes: int) -> Image | None:
    """`image` itself when it is within `limit_bytes`; otherwise a JPEG of it that is, or None.

    JPEG because every Discord client shows it inline and it shrinks the most; transparency is
    flattened onto white and an animation keeps its first frame. Lower qualities are tried before
    smaller sizes, so a picture keeps its size whenever a lower quality is enough.
    """
    if len(image.data) <= limit_bytes:
        return image
    picture = _decode(image.data)
    if picture is None:
        return None
    scale = 1.0
    while min(picture.width, picture.height) * scale >= MIN_SIDE_PIXELS:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        candidate = picture if scale == 1.0 else picture.resize(size, Pillow.Resampling.LANCZOS)
        for quality in JPEG_QUALITIES:
            buffer = io.BytesIO()
            candidate.save(buffer, format="JPEG", quality=quality, optimize=True)
            if buffer.tell() <= limit_bytes:
                log.info(
                    "image re-encoded to fit the upload limit: %d -> %d bytes, %dx%d, quality %d",
                    len(image.data),
                    buffer.tell(),
                    size[0],
                    size[1],
                    quality,
                )
                return Image(data=buffer.getvalue(), mime="image/jpeg", alt=image.alt)
        scale *= SCALE_STEP
    return None


def _decode(data: bytes) -> Pillow.Image | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Pillow.DecompressionBombWarning)
            with Pillow.open(io.BytesIO(data)) as opened:
                if opened.width * opened.height > MAX_DECODE_PIXELS:
                    return None
                opened.seek(0)
                picture = opened.convert("RGBA")
    except (OSError, UnidentifiedImageError, Pillow.DecompressionBombWarning, Pillow.DecompressionBombError):
        log.warning("an image over the upload limit could not be decoded to shrink it")
        return None
    flat = Pillow.new("RGB", picture.size, (255, 255, 255))
    flat.paste(picture, mask=picture.getchannel("A"))
    return flat
