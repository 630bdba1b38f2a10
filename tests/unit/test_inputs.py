"""`is_blank`: what counts as a message with nothing in it."""

from __future__ import annotations

import pytest

from core.inputs import is_blank


@pytest.mark.parametrize(
    "text",
    [
        "",
        " \t\n\u00a0\u3000",
        "\u200b\u200c\u200d\u2060\ufeff",  # zero-width space, non-joiner, joiner, word joiner, BOM
        "\u00ad\u200e\u200f\u202e\u2066\u2069",  # soft hyphen, bidi marks and isolates
        "\ufe0f\ufe0e\U000e0100\u034f",  # variation selectors, combining grapheme joiner
        "\u3164\u115f\u1160\uffa0\u2800",  # Hangul fillers, blank Braille pattern
        "\U000e0041\U000e007f",  # tag characters
        "\x00\x07\x1b",
    ],
)
def test_invisible_only_text_is_blank(text: str) -> None:
    assert is_blank(text)


@pytest.mark.parametrize("text", ["a", "\u200ba\u200b", "❤\ufe0f", "👍🏽", "e\u0301", "\ue000", "。"])
def test_anything_visible_is_not_blank(text: str) -> None:
    assert not is_blank(text)
