"""Rendering for Telegram (text + entities) and Discord (Markdown), fallbacks, notes, reasoning, visible text."""

from __future__ import annotations

import random
import re
import time
from typing import Literal

import pytest

from core.live.markdown import (
    ImageFilter,
    clean_surrogates,
    escape_markdown,
    open_fence,
    render_final,
    render_live,
    render_plain,
    render_reasoning,
    strip_images,
    visible_text,
    with_note,
)
from core.live.split import count_units
from core.live.surface import Entity, Rendered


def test_telegram_gets_plain_text_with_entities_and_literal_characters_intact() -> None:
    rendered = render_final("  **Bold** and `x < y & z` with snake_case, 2 * 3 and [site](https://e.com)\n", "entities")
    assert rendered.markup == "entities"
    assert rendered.text == "Bold and x < y & z with snake_case, 2 * 3 and site"
    kinds = {(e.type, rendered.text[e.offset : e.offset + e.length]) for e in rendered.entities}
    assert ("bold", "Bold") in kinds and ("code", "x < y & z") in kinds and ("text_link", "site") in kinds


def test_telegram_entity_offsets_count_utf16_after_emoji() -> None:
    rendered = render_final("👨\u200d👩\u200d👧 **bold**", "entities")
    (bold,) = rendered.entities
    assert bold.offset == count_units("👨\u200d👩\u200d👧 ", "utf16")
    assert bold.length == 4


def test_code_blocks_keep_their_language() -> None:
    rendered = render_final("```rust\nfn main() {}\n```", "entities")
    assert rendered.text == "fn main() {}"
    assert rendered.entities == (Entity("pre", 0, 12, "", "rust"),)


def test_discord_passes_markdown_through() -> None:
    source = "# Title\n\n**bold** and ||spoiler||\n```py\ncode\n```"
    assert render_final(source, "markdown") == Rendered(source, "markdown")


def test_live_previews_are_sane_for_unfinished_markdown() -> None:
    partial = "Here:\n\n```python\ndef f():\n    return **kw"
    assert render_live(partial, "entities") == Rendered(partial, "plain")
    discord = render_live(partial, "markdown")
    assert discord.text.endswith("\n```") and discord.text.count("```") == 2
    assert render_live("done\n```\ncode\n```\n", "markdown").text == "done\n```\ncode\n```"


def test_open_fence_tracks_openers_and_closers() -> None:
    assert open_fence("a\n```py\nx") == "```"
    assert open_fence("a\n````\nx\n```\ny") == "````"
    assert open_fence("a\n```\nx\n```") == ""
    assert open_fence("inline ``` not a fence") == ""


def test_escaped_discord_text_reads_back_as_the_original() -> None:
    text = "a*b_c~d`e|f>g#h-i[j](k)<l \\ m **n** ||o||"
    assert visible_text(Rendered(escape_markdown(text), "markdown")) == text


def test_plain_fallback_keeps_the_visible_text() -> None:
    formatted = render_final("**Hi** `there`", "entities")
    assert render_plain(formatted, "entities") == Rendered("Hi there", "plain")
    discord = render_plain(Rendered("**Hi** `there`", "markdown"), "markdown")
    assert visible_text(discord) == "Hi there" and "\\*" not in discord.text


def test_discord_visible_text_drops_markup() -> None:
    rendered = Rendered("# Head\n**b** _i_ ~~s~~ ||spoil|| [link](https://x.y)\n-# small\n```py\ncode\n```", "markdown")
    assert visible_text(rendered).split() == ["Head", "b", "i", "s", "spoil", "link", "small", "code"]


def test_a_note_goes_after_the_text_in_small_print() -> None:
    base = render_final("**Answer**", "entities")
    noted = with_note(base, "⚠️ Cut short.", "entities", max_units=4096, unit="utf16")
    assert noted is not None and noted.text == "Answer\n\n⚠️ Cut short."
    assert noted.entities[-1] == Entity("italic", 8, count_units("⚠️ Cut short.", "utf16"))
    assert with_note(base, "note", "entities", max_units=10, unit="utf16") is None
    discord = with_note(Rendered("text", "markdown"), "Cut *short*", "markdown", max_units=2000, unit="codepoint")
    assert discord == Rendered("text\n\n-# Cut \\*short\\*", "markdown")


def test_reasoning_shows_its_latest_part_as_a_quote() -> None:
    reasoning = "".join(f"step {i} thinking.\n" for i in range(2000))
    live = render_reasoning(reasoning, "entities", is_collapsed=False, max_units=4096, unit="utf16", ellipsis="…")
    assert live.text.startswith("…") and live.text.endswith("step 1999 thinking.")
    assert count_units(live.text, "utf16") <= 4096
    assert [e.type for e in live.entities] == ["blockquote"]
    collapsed = render_reasoning("short", "entities", is_collapsed=True, max_units=4096, unit="utf16", ellipsis="…")
    assert collapsed.entities == (Entity("expandable_blockquote", 0, 5),)
    discord = render_reasoning(
        reasoning, "markdown", is_collapsed=False, max_units=2000, unit="codepoint", ellipsis="…"
    )
    assert len(discord.text) <= 2000
    assert all(line.startswith("-# ") for line in discord.text.splitlines())


def test_data_url_images_never_reach_the_text_however_chunked() -> None:
    image = "![a cat](data:image/png;base64," + "iVBORw0KGgo" * 300 + ")"
    text = f"Here is a cat: {image} and a bare data:image/png;base64,AAAA done. Also ![x](https://e.com/x.png)."
    expected = "Here is a cat:  and a bare  done. Also ![x](https://e.com/x.png)."
    assert strip_images(text) == expected
    rng = random.Random(5)
    for _ in range(30):
        image_filter, out, position = ImageFilter(), [], 0
        while position < len(text):
            step = rng.randint(1, 40)
            piece = image_filter.feed(text[position : position + step])
            assert "base64" not in piece and "iVBOR" not in piece
            out.append(piece)
            position += step
        assert "".join(out) + image_filter.flush() == expected


def test_lone_surrogates_from_broken_escapes_become_replacement_characters() -> None:
    assert clean_surrogates("a\ud800b") == "a\ufffdb"
    assert clean_surrogates("ok 🚀") == "ok 🚀"
    assert render_final(clean_surrogates("**x\udc00**"), "entities").text == "x\ufffd"


class ReferenceFilter:
    """The filter before the linear rewrite (its _START regex is quadratic on a run of "!["): the reference.

    Holds back a tail that may still become one, so no base64 ever reaches a chat. `feed` and `flush`
    together give the same text as `strip_images` on the whole, whatever the chunking.
    """

    _START = re.compile(r"!\[[^\]\n]*\]\(\s*<?data:|data:image/")
    _PARTIAL = re.compile(
        r"!(?:\[[^\]\n]{0,300}(?:\](?:\(\s{0,4}<?(?:d(?:a(?:t(?:a)?)?)?)?)?)?)?\Z"
        r"|d(?:a(?:t(?:a(?::(?:i(?:m(?:a(?:g(?:e)?)?)?)?)?)?)?)?)?\Z"
    )
    _BARE_END = re.compile(r"[\s)]")

    def __init__(self) -> None:
        self._held = ""
        self._skipping: Literal["", "markdown", "bare"] = ""

    def feed(self, text: str) -> str:
        buffer, out = self._held + text, list[str]()
        self._held = ""
        while buffer:
            if self._skipping:
                if self._skipping == "markdown":
                    end = buffer.find(")")
                    end = end + 1 if end >= 0 else -1
                else:
                    end = _search_end(self._BARE_END, buffer)
                if end < 0:
                    return "".join(out)  # still inside the URL: drop what came
                buffer, self._skipping = buffer[end:], ""
                continue
            match = self._START.search(buffer)
            if match is not None:
                out.append(buffer[: match.start()])
                buffer = buffer[match.end() :]
                self._skipping = "markdown" if match.group().startswith("!") else "bare"
                continue
            partial = self._PARTIAL.search(buffer, max(0, len(buffer) - 320))
            keep = partial.start() if partial else len(buffer)
            out.append(buffer[:keep])
            self._held = buffer[keep:]
            break
        return "".join(out)

    def flush(self) -> str:
        held, self._held, self._skipping = ("" if self._skipping else self._held), "", ""
        return held


def _search_end(pattern: re.Pattern[str], text: str) -> int:
    match = pattern.search(text)
    return match.start() if match else -1


FILTER_PIECES = ["![", "!", "[", "]", "](", "(", ")", "a", " ", "\n", "<", "data:", "data:image/", "d", "da", "QUJD"]


def test_the_linear_image_filter_agrees_with_the_reference_whatever_the_chunking() -> None:
    generator = random.Random(7)
    for _ in range(5_000):
        text = "".join(generator.choice(FILTER_PIECES) for _ in range(generator.randint(0, 16)))
        reference, linear = ReferenceFilter(), ImageFilter()
        cuts = sorted(generator.sample(range(len(text) + 1), min(3, len(text) + 1)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        expected = "".join(reference.feed(piece) for piece in pieces) + reference.flush()
        got = "".join(linear.feed(piece) for piece in pieces) + linear.flush()
        assert got == expected, (text, pieces)


@pytest.mark.parametrize("unit", ["![", "[![", "![x](data:", "](", "](tg://", "data:", "d", "`", "[", "> "])
def test_a_megabyte_of_hostile_markdown_passes_the_live_filters_in_linear_time(unit: str) -> None:
    text = unit * (1_000_000 // len(unit))
    started = time.perf_counter()
    stripped = strip_images(text)
    live = ImageFilter()
    streamed = "".join(live.feed(text[i : i + 4000]) for i in range(0, len(text), 4000)) + live.flush()
    shown = render_live(text, "markdown")
    elapsed = time.perf_counter() - started
    assert streamed == stripped and "](tg:" not in shown.text
    assert elapsed < 1.0, f"{elapsed:.2f}s for 1M characters: a pass over model output is not linear"
