"""What a user's turn may hold before anything is stored or sent upstream: visible text or an image, images
of a supported type, within the size caps. Imports only core's value and error modules.
"""

from __future__ import annotations

import unicodedata

from core.conversation import Turn
from core.errors import ImageError, InputError
from core.events import Image
from core.images import validate_user_image
from core.texts import size

# Characters that draw nothing but are not whitespace nor category Cf/Cc: variation selectors, the combining
# grapheme joiner, Mongolian free variation selectors, Hangul fillers and the blank Braille pattern (all seen
# used to send "empty" messages that get past a strip()).
_ALSO_BLANK = frozenset(
    [0x034F, 0x115F, 0x1160, 0x180B, 0x180C, 0x180D, 0x180F, 0x2800, 0x3164, 0xFFA0, *range(0xFE00, 0xFE10)]
)
_VARIATION_SELECTORS_SUPPLEMENT = range(0xE0100, 0xE01F0)


def _blank(char: str) -> bool:
    code = ord(char)
    return (
        char.isspace()
        or unicodedata.category(char) in ("Cf", "Cc")  # format (zero-width, bidi, tags, U+00AD) and control
        or code in _ALSO_BLANK
        or code in _VARIATION_SELECTORS_SUPPLEMENT
    )


def is_blank(text: str) -> bool:
    """True when `text` shows nothing: only whitespace and invisible characters (one pass, stops early)."""
    return all(_blank(char) for char in text)


def check_turn(turn: Turn, *, max_chars: int, image_max_bytes: int, turn_max_bytes: int) -> list[Image]:
    """Refuse what would cost upstream tokens for nothing or store too much; return the turn's images
    (its own, then a quote's) validated by their bytes.
    """
    if len(turn.text) > max_chars:
        raise too_long(max_chars)
    images = [*turn.images, *(turn.quote.images if turn.quote else ())]
    if not images and not turn.documents and is_blank(turn.text):
        raise InputError("empty turn", user_message="There is nothing to answer in that message.")
    check_turn_bytes(sum(len(image.data) for image in images), turn_max_bytes)
    return [validate_user_image(image.data, max_bytes=image_max_bytes, alt=image.alt) for image in images]


def check_turn_bytes(total: int, turn_max_bytes: int) -> None:
    """Refuse `total` image bytes in one message over IMAGE_MAX_BYTES_PER_TURN; adapters call it with the
    sizes a platform declares, before downloading anything."""
    if total > turn_max_bytes:
        raise ImageError(
            f"{total} image bytes in one turn, over {turn_max_bytes}",
            user_message=(
                f"Those images are too large together (at most {size(turn_max_bytes)} per message); "
                "send fewer or smaller ones."
            ),
        )


def too_long(limit: int) -> InputError:
    return InputError("input too long", user_message=f"That message is too long (the limit is {limit} characters).")
