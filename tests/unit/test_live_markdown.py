"""Rendering for Telegram (text + entities) and Discord (Markdown), fallbacks, notes, reasoning, visible text."""

from __future__ import annotations

import random

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
