"""Cutting answers into messages: natural boundaries, graphemes, code fences, and streamed == at once."""

from __future__ import annotations

import random

import pytest

from core.live.layout import Layout
from core.live.markdown import render_final, visible_text
from core.live.split import (
    Boundary,
    count_units,
    cut_segment,
    grapheme_floor,
    is_grapheme_boundary,
    prefix_within,
)
from core.live.surface import Dialect, LengthUnit, Rendered

FAMILY = "👨\u200d👩\u200d👧\u200d👦"
FLAG_FR = "🇫🇷"
THUMB = "👍🏽"
E_ACUTE = "e\u0301"
KEYCAP = "1\ufe0f\u20e3"


def layout(window: int, platform: Dialect = "entities", unit: LengthUnit = "utf16") -> Layout:
    return Layout(
        window_units=window,
        unit=unit,
        render=lambda source: render_final(source, platform),
        fits=lambda rendered: count_units(rendered.text, unit) <= window,
    )


def test_units_count_utf16_code_units_or_code_points() -> None:
    assert count_units("a" + FAMILY, "utf16") == 1 + 11
    assert count_units("a" + FAMILY, "codepoint") == 1 + 7
    assert prefix_within("ab😀c", 3, "utf16") == 2
    assert prefix_within("ab😀c", 4, "utf16") == 3


@pytest.mark.parametrize("cluster", [FAMILY, FLAG_FR, THUMB, E_ACUTE, KEYCAP, "각", "\u1100\u1161\u11a8"])
def test_no_boundary_inside_a_grapheme_cluster(cluster: str) -> None:
    text = f"x{cluster}{cluster}y"
    inside = [i for i in range(2, 1 + len(cluster))] + [i + len(cluster) for i in range(2, 1 + len(cluster))]
    assert all(not is_grapheme_boundary(text, i) for i in inside if i < len(text) - 1)
    assert is_grapheme_boundary(text, 1)
    assert is_grapheme_boundary(text, 1 + len(cluster))


def test_flags_pair_up_from_the_left() -> None:
    flags = FLAG_FR * 3  # six regional indicators
    assert [i for i in range(1, len(flags)) if is_grapheme_boundary(flags, i)] == [2, 4]
    assert grapheme_floor(flags, 5) == 4


def test_a_lone_surrogate_pair_is_never_split() -> None:
    text = "a\ud83d\ude00b"  # as `surrogatepass` decoding can leave it
    assert not is_grapheme_boundary(text, 2)


@pytest.mark.parametrize("unit", ["utf16", "codepoint"])
def test_text_without_spaces_is_cut_between_graphemes_only(unit: LengthUnit) -> None:
    clusters = [FAMILY, FLAG_FR, THUMB, E_ACUTE, KEYCAP, "字", "a"]
    rng = random.Random(7)
    text = "".join(rng.choice(clusters) for _ in range(400))
    pieces = layout(50, "markdown", unit).finish(text)
    assert "".join(p.text for p in pieces) == text
    assert all(count_units(p.text, unit) <= 50 for p in pieces)
    position = 0
    for piece in pieces:
        position += len(piece.text)
        assert is_grapheme_boundary(text, position)


def test_prefers_a_paragraph_then_a_line_then_a_sentence_then_a_word() -> None:
    para = "First paragraph is here.\n\nSecond line one\nsecond line two. Then a sentence. And words"
    fits = lambda head: True  # noqa: E731
    cut = cut_segment(para, window_units=len(para), unit="codepoint", fits=fits)
    assert cut.boundary is Boundary.LINE and cut.head.endswith("second line one".capitalize())
    cut = cut_segment(para, window_units=30, unit="codepoint", fits=fits)
    assert cut.head == "First paragraph is here." and cut.boundary is Boundary.BLOCK
    sentence = "One sentence here. Another one follows and then some more words"
    cut = cut_segment(sentence, window_units=34, unit="codepoint", fits=fits)
    assert cut.head == "One sentence here." and cut.boundary is Boundary.SENTENCE
    cut = cut_segment("alpha beta gamma delta epsilon zeta eta", window_units=30, unit="codepoint", fits=fits)
    assert cut.head == "alpha beta gamma" and cut.boundary is Boundary.WORD


def test_never_cuts_inside_bold_or_a_link() -> None:
    source = "intro " + "**" + "bold words " * 8 + "end** and [a link with words](https://example.com) tail"
    for window in range(20, len(source), 7):
        cut = cut_segment(source, window_units=window, unit="codepoint", fits=lambda head: True)
        assert cut.head.count("**") % 2 == 0
        assert cut.head.count("[") == cut.head.count("]")


def test_a_cut_code_block_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"value_{i} = compute({i})  # line {i}" for i in range(120))
    source = f"Intro.\n\n```python\n{code}\n```\n\nAfter."
    cases: list[tuple[Dialect, LengthUnit, int]] = [("entities", "utf16", 1000), ("markdown", "codepoint", 700)]
    for platform, unit, window in cases:
        pieces = layout(window, platform, unit).finish(source)
        assert len(pieces) >= 4
        code_pieces = [p for p in pieces if "value_" in p.text]
        for piece in code_pieces:
            if platform == "entities":
                assert [(e.type, e.language) for e in piece.entities] == [("pre", "python")]
            else:
                assert "```python\n" in piece.text and piece.text.count("```") % 2 == 0
        seen = "\n".join(visible_text(p) for p in pieces)
        assert all(f"value_{i} = compute({i})" in seen for i in range(120))


def test_a_cut_table_repeats_its_header() -> None:
    rows = "\n".join(f"| {i} | item number {i} |" for i in range(60))
    source = f"| n | name |\n|---|---|\n{rows}"
    pieces = layout(600, "markdown", "codepoint").finish(source)
    assert len(pieces) > 1
    assert all(p.text.startswith("| n | name |\n|---|---|") for p in pieces)


def test_streaming_seals_the_same_messages_as_cutting_at_once() -> None:
    rng = random.Random(3)
    words = ["alpha", "**beta**", "`gamma`", "delta.", "_eps_", "字字。", FAMILY, "\n\n", "\n- item", "\n1. step"]
    body = " ".join(rng.choice(words) for _ in range(1500))
    source = f"{body}\n\n```js\n" + "\n".join(f"let x{i} = {i};" for i in range(200)) + "\n```\n\nBye."
    streamed = layout(500)
    sealed_so_far: list[Rendered] = []
    position = 0
    while position < len(source):
        position += rng.randint(1, 60)
        streamed.advance(source[:position])
        assert streamed.sealed[: len(sealed_so_far)] == sealed_so_far  # a sealed message never changes
        sealed_so_far = list(streamed.sealed)
    assert streamed.finish(source) == layout(500).finish(source)
    assert len(sealed_so_far) >= 5


def test_a_final_text_that_differs_from_the_stream_is_cut_afresh() -> None:
    streamed = layout(200)
    streamed.advance("word " * 100)
    final = "other " * 60
    assert streamed.finish(final) == layout(200).finish(final)


@pytest.mark.parametrize(
    ("platform", "unit"),
    [
        ("entities", "> "),
        ("entities", "- "),
        ("markdown", "> "),
        ("markdown", "- "),
        ("markdown", "`"),
        ("entities", "e" + "\u0301" * 200),
        ("markdown", "."),
    ],
)
def test_hostile_text_is_cut_into_nearly_full_messages(platform: str, unit: str) -> None:
    # Text where every position starts a block ("> > >"), one endless fence line or one endless grapheme
    # cluster used to be cut a character or two at a time: thousands of messages, each re-parsing a whole
    # window (quadratic). Now every message takes at least a good part of a window.
    window = 4096 if platform == "entities" else 1984
    text = unit * (24_000 // len(unit))
    layout = Layout(
        window_units=window,
        unit="utf16",
        render=lambda source: render_final(source, platform),  # type: ignore[arg-type]
        fits=lambda rendered: count_units(rendered.text, "utf16") <= window + 16,
    )
    messages = layout.finish(text)
    assert len(messages) <= 3 * len(text) // window + 2
